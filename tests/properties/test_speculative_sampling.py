"""Speculative sampling keeps the verifier's distribution exactly."""

import pytest
import torch

from engine.verification.acceptance import accept_probability, accept_sampled, residual
from engine.drafting.protocol import Proposal, chain_tree
from conftest import make_session
from helpers.chi_square import chi_square_p_value


def chain(ids, q_rows):
    """A chain of drafts with the distributions they were drawn from: the one-branch tree the loop verifies."""
    return chain_tree(Proposal(list(ids), q_rows, None)).tree


P = torch.tensor([0.45, 0.25, 0.15, 0.10, 0.05])
Q = torch.tensor([0.10, 0.50, 0.05, 0.30, 0.05])


def first_token_counts(rule, n=20000, seed=0):
    generator = torch.Generator().manual_seed(seed)
    counts = [0] * len(P)
    for _ in range(n):
        draft = int(torch.multinomial(Q, 1, generator=generator))
        token = rule(draft, generator)
        counts[token] += 1
    return counts


def real_rule(draft, generator):
    verdict = accept_sampled(chain([draft], Q.unsqueeze(0)), torch.stack([P, P]), generator)
    return draft if verdict.accepted else verdict.next_token


def wrong_rule(draft, generator):
    """Accept whenever q > p (and otherwise resample from p): a plausible-looking bug."""
    if Q[draft] > P[draft]:
        return draft
    return int(torch.multinomial(P, 1, generator=generator))


def test_output_distribution_matches_p():
    assert chi_square_p_value(first_token_counts(real_rule), P.tolist()) > 0.001


def test_the_test_catches_a_wrong_rule():
    assert chi_square_p_value(first_token_counts(wrong_rule), P.tolist()) < 1e-6


def test_accept_probability_is_min_one_p_over_q():
    assert accept_probability(0.2, 0.4) == pytest.approx(0.5)
    assert accept_probability(0.6, 0.3) == 1.0
    assert accept_probability(0.0, 0.3) == 0.0


def test_residual_is_normalized_positive_part():
    r = residual(P, Q)
    expected = torch.tensor([0.35, 0.0, 0.10, 0.0, 0.0]) / 0.45
    assert torch.allclose(r, expected)
    # p == q: no rejection mass; fall back to p.
    assert torch.allclose(residual(P, P), P)


def test_point_mass_draft_is_accepted_with_probability_p():
    """Greedy or n-gram drafts have q = 1 on the drafted token: accept with probability p(x)."""
    q = torch.zeros(5)
    q[0] = 1.0
    generator = torch.Generator().manual_seed(1)
    n = 8000
    accepted = sum(accept_sampled(chain([0], q.unsqueeze(0)), torch.stack([P, P]), generator).accepted for _ in range(n))
    assert accepted / n == pytest.approx(0.45, abs=0.02)


def test_rejection_never_returns_the_rejected_point_mass_token():
    q = torch.zeros(5)
    q[0] = 1.0
    generator = torch.Generator().manual_seed(2)
    for _ in range(500):
        verdict = accept_sampled(chain([0], q.unsqueeze(0)), torch.stack([P, P]), generator)
        if not verdict.accepted:
            assert verdict.next_token != 0


def test_all_accepted_gives_bonus_from_last_row():
    p_rows = torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    q_rows = torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    verdict = accept_sampled(chain([1, 1], q_rows), p_rows, torch.Generator().manual_seed(0))
    assert verdict.accepted == 2 and verdict.next_token == 2
    assert [ratio for ratio, _ in verdict.examined.values()] == [1.0, 1.0]


def first_tokens(session, prompt: str, seeds: int = 3000, on_step=None) -> tuple[list[int], list[float]]:
    """How often each token came first over `seeds` runs of one step, and the verifier's own softmax there."""
    import torch as t

    session.reset(prompt)
    with t.inference_mode():
        logits = session.verifier.model(input_ids=t.tensor([session.prompt_ids])).logits[0, -1]
    p = logits.softmax(-1).tolist()
    counts = [0] * len(p)
    for seed in range(seeds):
        session.reset(prompt, seed=seed)
        result = session.step()
        counts[result.emitted[0].token_id] += 1
        if on_step is not None:
            on_step(result)
    return counts, p


@pytest.mark.parametrize("tree", [None, "3,2", "dynamic:6"])  # one loop: chains and trees alike
def test_session_sampling_matches_verifier_distribution(tiny, tiny_verifier, tree):
    """End to end: first generated token over many seeds vs the verifier's own softmax, with a real drafter."""
    session = make_session(tiny_verifier, tiny["drafter"], block_size=3, verify="sampling", temperature=1.0,
                           draft_mode="sampled", draft_temperature=1.5, max_new_tokens=4, tree=tree)
    counts, p = first_tokens(session, "The future of")
    assert chi_square_p_value(counts, p) > 0.001


def test_ngram_drafts_keep_the_verifier_distribution(tiny_verifier):
    """n-gram drafts are point masses (q = 1): accepted with probability p, else resampled from p without them."""
    session = make_session(tiny_verifier, "ngram", block_size=3, verify="sampling", max_new_tokens=4)
    steps = []
    counts, p = first_tokens(session, "the future of the future of the future of", on_step=steps.append)
    assert all(r.drafted > 0 for r in steps) and len(steps) == 3000  # the repeated prompt always gives the n-gram drafter something to propose
    assert chi_square_p_value(counts, p) > 0.001


def test_the_draft_head_keeps_the_verifier_distribution(tiny_head, tiny_verifier):
    """The trained head's q is zero outside its reduced vocabulary: speculative sampling must still give exactly p,
    for the first token and for the second (drafted on the head's own predicted feature)."""
    session = make_session(tiny_verifier, f"head:{tiny_head[0]}", block_size=3, verify="sampling", temperature=1.0,
                           draft_mode="sampled", draft_temperature=1.5, max_new_tokens=4)
    steps = []
    counts, p = first_tokens(session, "The future of", on_step=steps.append)
    drafted, accepted = sum(r.drafted for r in steps), sum(r.accepted for r in steps)
    assert drafted == 9000 and accepted > 0  # the head really drafted, and some drafts were kept
    assert chi_square_p_value(counts, p) > 0.001


def test_a_confidence_stop_keeps_the_verifier_distribution(tiny, tiny_verifier):
    """Where a block ends depends only on the drafts already made, so every position's rule stays exact."""
    session = make_session(tiny_verifier, tiny["drafter"], block_size=3, verify="sampling", temperature=1.0,
                           draft_mode="sampled", draft_temperature=1.5, max_new_tokens=4, draft_confidence=0.05)
    steps = []
    counts, p = first_tokens(session, "The future of", on_step=steps.append)
    lengths = {r.drafted for r in steps}
    assert len(lengths) > 1 and max(lengths) == 3  # the stop really cut some blocks and not others
    assert chi_square_p_value(counts, p) > 0.001
