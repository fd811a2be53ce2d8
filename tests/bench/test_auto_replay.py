"""bench/auto_replay.py: a recorded text replays as a real session walks it, and auto replays through the planner."""

import pytest
from conftest import make_session

from bench.auto_replay import Replay, record_text
from engine.planning.auto_plan import AutoPlanner, VerifyCosts

COSTS = {"verify_s": {n: 0.01 * (1 + 0.1 * n) for n in range(1, 11)}, "drafting_pass_s": {"head": 0.001, "lookup": 0.0},
         "bookkeeping_s": 0.0005}
PROMPTS = ["x = 1\nx = 1\nx = 1\nx = 1", "print("]  # lookup from the start; the head from the start


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("prompt", PROMPTS)
def test_a_replayed_fixed_chain_takes_the_steps_a_session_takes(tiny_head, tiny_verifier, prompt, k):
    """Drafts depend on the context, not on the blocks that led there: the replay needs no model to walk a text."""
    spec = f"ngram+head:{tiny_head[0]}"
    recorder = make_session(tiny_verifier, spec, block_size=9, draft_mode="greedy", max_new_tokens=24)
    text, _ = record_text(recorder, prompt)
    session = make_session(tiny_verifier, spec, block_size=k, draft_mode="greedy", max_new_tokens=24)
    session.reset(prompt)
    session.run()
    steps = Replay(text, COSTS, 24).fixed_steps("ngram+head", k)
    assert [(s.drafted, s.emitted) for s in steps] == [(s.drafted, len(s.emitted)) for s in session.steps]
    kept = [sum(p.decision.value == "accepted" and p.draft_id is not None for p in s.positions) for s in steps]
    assert kept == [s.accepted for s in session.steps]
    assert sum(s.emitted for s in steps) == text["new_tokens"] == len(session.new_token_ids)


def test_the_replay_charges_each_step_its_costs_and_auto_learns_from_it():
    # A text where the head keeps its first two drafts everywhere and never a third.
    text = {"new_tokens": 12, "positions": [{"head_ranks": [1, 1, 3, None, None], "lookup_hits": None}] * 12}
    walk = Replay(text, COSTS, 64)
    k2 = walk.fixed_steps("head", 2)
    assert [s.emitted for s in k2] == [3, 3, 3, 3]  # two kept and the bonus
    assert walk.fixed("head", 2) == pytest.approx(12 / (4 * (2 * 0.001 + 0.013 + 0.0005)))
    assert [s.emitted for s in walk.fixed_steps("head", 4)] == [3, 3, 3, 3]  # the third draft is refused
    assert [s.emitted for s in walk.fixed_steps("head", 2, offset=2)][:3] == [1, 1, 3]
    planner = AutoPlanner(VerifyCosts({n: COSTS["verify_s"][n] for n in (1, 2, 3, 4, 5, 7, 9)}),
                          prior_of=lambda source: (0.4, 0.4, 0.4))
    long_text = dict(text, new_tokens=60, positions=text["positions"] * 5)
    Replay(long_text, COSTS, 64).auto(planner)
    _, choices = Replay(long_text, COSTS, 64).auto(planner)
    assert max(choices, key=choices.get).startswith("chain k=2")  # what pays on this text, learnt from the steps
