"""Sampling verification with the verifier on a server (engine/verification/server_draws.py), against the stand-in
server (tests/helpers/model_server.py): the first emitted token is distributed as the server's own p, a rule that
draws corrections from p instead of the residual is caught, and what the server cannot send (a whole distribution
without --max-logprobs -1) is said. The same distribution test on a real vLLM server: tests/engine/test_vllm_server.py."""

from __future__ import annotations

import math

import pytest
import torch

from engine import ConfigError, ServerError, Session, SpecConfig
from conftest import plain_greedy
from engine.verification import server_draws
from helpers.chi_square import chi_square_p_value
from helpers.model_server import serving

PROMPT = "the cat sat on the mat and the"


@pytest.fixture
def server(tiny_verifier):
    with serving(tiny_verifier) as running:
        yield running


def sharpen(server, tiny_verifier, prompt_ids, top_p=0.55) -> list[float]:
    """Make the stand-in's model peaked enough that a drafted argmax has p near `top_p` (a wrong rule then moves
    its frequency a lot); return the server's p after `prompt_ids`."""
    with torch.inference_mode():
        logits = tiny_verifier.model(input_ids=torch.tensor([prompt_ids])).logits[0, -1].float()
    low, high = 0.0, 200.0
    for _ in range(60):  # bisect the scale at which the top token's probability is top_p
        mid = (low + high) / 2
        low, high = (mid, high) if float((logits * mid).softmax(-1).max()) < top_p else (low, mid)
    server.logit_scale = high
    return (logits * high).softmax(-1).tolist()


def server_p(tiny_verifier, prompt_ids) -> list[float]:
    with torch.inference_mode():
        return tiny_verifier.model(input_ids=torch.tensor([prompt_ids])).logits[0, -1].float().softmax(-1).tolist()


def first_tokens(session: Session, prompt: str, seeds: int) -> tuple[list[int], list]:
    counts, steps = [0] * session.vocab, []
    for seed in range(seeds):
        session.reset(prompt, seed=seed)
        result = session.step()
        counts[result.emitted[0].token_id] += 1
        steps.append(result)
    return counts, steps


def point_mass_session(server, tiny, **config) -> Session:
    """Greedy drafts (q = 1 on the drafter's argmax) by a local copy of the served model: x is the server's argmax."""
    return Session.from_config(SpecConfig(verifier=server.url, drafter=tiny["verifier"], block_size=1,
                                          verify="sampling", max_new_tokens=4, **config))


def test_point_mass_drafts_keep_the_servers_distribution(server, tiny, tiny_verifier):
    session = point_mass_session(server, tiny)
    session.reset(PROMPT)
    p = sharpen(server, tiny_verifier, session.prompt_ids)
    counts, steps = first_tokens(session, PROMPT, 600)
    rejected = [s for s in steps if s.accepted == 0]
    assert 0.3 < len(rejected) / len(steps) < 0.6  # kept with probability p(x) = 0.55: both paths ran
    assert all(s.server_draws >= 1 and s.draw_note is None for s in rejected)  # corrections: the server's samples
    assert all(s.server_draws == 0 for s in steps if s.accepted)  # a bonus is the verify request's own draw
    assert chi_square_p_value(counts, p) > 0.001
    from specdec_tui.narration import narrate

    story = narrate(rejected[0])  # the step's story says where its correction came from
    assert f"The server drew it: its draw {rejected[0].server_draws} from p, the first kept" in story


def test_the_test_catches_corrections_drawn_from_p_instead_of_the_residual(server, tiny, tiny_verifier, monkeypatch):
    def from_p(self, row, q_drafter):  # the bug: take the server's sample as it comes, never refuse one
        self.draws += 1
        return self.lm.client.sample(self.context + self.node_ids[:row], 1, seed=self.draws)[0][0]

    monkeypatch.setattr(server_draws.ServerDraws, "_correction", from_p)
    session = point_mass_session(server, tiny)
    session.reset(PROMPT)
    p = sharpen(server, tiny_verifier, session.prompt_ids)
    counts, _ = first_tokens(session, PROMPT, 600)
    assert chi_square_p_value(counts, p) < 1e-6


def test_sampled_drafts_keep_the_servers_distribution(server, tiny, tiny_verifier):
    """q is the drafter's whole (warped) distribution: a draw y is kept with probability max(0, 1 - q(y)/p(y))."""
    session = Session.from_config(SpecConfig(verifier=server.url, drafter=tiny["drafter"], block_size=3,
                                             verify="sampling", draft_mode="sampled", draft_temperature=1.5,
                                             max_new_tokens=4))
    session.reset(PROMPT)
    counts, steps = first_tokens(session, PROMPT, 600)
    assert sum(s.server_draws for s in steps) > 50
    assert chi_square_p_value(counts, server_p(tiny_verifier, session.prompt_ids)) > 0.001


def test_when_the_draws_run_out_the_whole_distribution_keeps_it_exact(server, tiny, tiny_verifier, monkeypatch):
    monkeypatch.setattr(server_draws, "REQUESTS", 0)  # every correction falls back at once
    server.max_logprobs = -1  # --max-logprobs -1: the server sends its whole distribution
    session = point_mass_session(server, tiny)
    session.reset(PROMPT)
    p = sharpen(server, tiny_verifier, session.prompt_ids)
    counts, steps = first_tokens(session, PROMPT, 400)
    notes = {s.draw_note for s in steps if s.accepted == 0}
    assert notes == {"none of 0 server draws fell in max(0, p − q): drawn from the server's whole distribution instead (exact)"}
    assert chi_square_p_value(counts, p) > 0.001


def test_a_server_that_sends_only_its_top_n_is_said_to_be_not_exact(server, tiny, tiny_verifier, monkeypatch):
    monkeypatch.setattr(server_draws, "REQUESTS", 0)
    session = point_mass_session(server, tiny)
    session.reset(PROMPT)
    sharpen(server, tiny_verifier, session.prompt_ids)
    _, steps = first_tokens(session, PROMPT, 20)
    rejected = [s for s in steps if s.accepted == 0]
    assert rejected and all("NOT exact" in s.draw_note and "--max-logprobs -1" in s.draw_note for s in rejected)


def test_a_correction_is_one_request_of_seeded_draws_and_a_run_repeats_with_its_seed(server, tiny, tiny_verifier):
    session = point_mass_session(server, tiny, seed=3)
    session.reset(PROMPT)
    sharpen(server, tiny_verifier, session.prompt_ids)
    for seed in range(40):
        session.reset(PROMPT, seed=seed)
        before = len(server.requests)
        result = session.step()
        if result.accepted == 0:
            break
    sent = server.requests[before:]
    score, draws = sent[0], sent[1:]
    assert score["prompt_logprobs"] == 5 and score["temperature"] == 1.0 and isinstance(score["seed"], int)
    assert len(draws) == 1 and draws[0]["n"] == min(16, math.ceil(3 / (1 - result.positions[0].p_verifier_of_draft)))
    assert draws[0]["temperature"] == 1.0 and draws[0]["top_k"] == -1 and draws[0]["top_p"] == 1.0
    again = point_mass_session(server, tiny)
    for run in (session, again):
        run.reset(PROMPT, seed=seed)
        run.run()
    assert session.new_token_ids == again.new_token_ids  # the same seed, the same server: the same text


def test_the_shown_p_of_a_correction_is_the_servers_own(server, tiny, tiny_verifier):
    """A correction drawn outside the server's top-5 gets its own logprob on screen, not the evenly spread rest."""
    session = point_mass_session(server, tiny)
    session.reset(PROMPT)
    p = sharpen(server, tiny_verifier, session.prompt_ids, top_p=0.3)
    for seed in range(200):
        session.reset(PROMPT, seed=seed)
        result = session.step()
        correction = result.positions[0]
        if result.accepted == 0 and correction.verifier_id not in [a.token_id for a in correction.verifier_top]:
            break
    else:
        pytest.fail("no correction outside the top-5 in 200 seeds")
    assert correction.p_verifier == pytest.approx(p[correction.verifier_id], rel=1e-4)


def test_a_server_that_fails_while_drawing_a_correction_leaves_the_run_as_it_was(server, tiny, tiny_verifier):
    session = point_mass_session(server, tiny)
    session.reset(PROMPT)
    sharpen(server, tiny_verifier, session.prompt_ids)
    server.fail_draws = True
    for seed in range(40):  # until a step rejects its draft and asks for draws
        session.reset(PROMPT, seed=seed)
        try:
            session.step()
        except ServerError as error:
            assert "HTTP 500" in str(error) and "engine core died" in str(error)
            break
    else:
        pytest.fail("no rejection in 40 seeds")
    assert session.tokens == session.prompt_ids and session.steps == []
    assert session.verifier_lm.length == len(session.prompt_ids) - 1  # the verify pass's drafts are forgotten
    server.fail_draws = False
    session.configure(verify="greedy")
    result = session.step()  # retried: the drafter drafts from the context, not from its refused draft
    assert result.positions[0].draft_id == plain_greedy(tiny_verifier, session.prompt_ids, 1)[0]


def test_a_verifier_temperature_is_refused_with_the_reason(server):
    with pytest.raises(ConfigError, match="raw distribution"):
        Session.from_config(SpecConfig(verifier=server.url, drafter="ngram", verify="sampling", temperature=0.7))


def test_plain_sampling_through_the_server_draws_every_token_there(server, tiny_verifier):
    session = Session.from_config(SpecConfig(verifier=server.url, drafter="ngram", verify="sampling", max_new_tokens=6))
    session.reset(PROMPT)
    before = len(server.requests)
    plain = session.baseline()
    sent = server.requests[before:]
    assert plain.new_tokens == 6 and len(sent) == 6 and all(r["temperature"] == 1.0 and "seed" in r for r in sent)
