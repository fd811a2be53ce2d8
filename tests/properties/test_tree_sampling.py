"""Sampling verification over a tree keeps the verifier's distribution exactly (recursive rejection sampling)."""

import torch

from conftest import make_session
from engine.verification.acceptance import accept_sampled, residual
from engine.drafting.tree import ROOT, DraftTree
from engine.drafting.sampling import one_hot
from test_speculative_sampling import P, Q, chi_square_p_value

SIBLINGS = 3


def draw_siblings(generator, count=SIBLINGS):
    """`count` children drawn from Q without replacement: (token, the distribution it was drawn from)."""
    remaining, out = Q.clone(), []
    for _ in range(count):
        q = remaining / remaining.sum()
        token = int(torch.multinomial(q, 1, generator=generator))
        out.append((token, q))
        remaining = remaining.clone()
        remaining[token] = 0.0
    return out


def top_siblings(generator, count=2):
    """Deterministic top-k children (EAGLE's dynamic trees): point masses."""
    return [(int(t), one_hot(int(t), len(Q))) for t in torch.topk(Q, count).indices]


def one_level_tree(siblings):
    tree = DraftTree()
    for token, q in siblings:
        tree.add(token, ROOT, q, float(Q[token]), None)
    return tree


def real_rule(siblings, generator):
    tree = one_level_tree(siblings)
    verdict = accept_sampled(tree, torch.stack([P] * (len(tree) + 1)), generator)
    return tree.ids[verdict.path[0]] if verdict.path else verdict.next_token


def wrong_rule_fixed_p(siblings, generator):
    """Tries every sibling against the verifier's original p (no residual between siblings)."""
    for token, q in siblings:
        if float(torch.rand((), generator=generator)) < min(1.0, float(P[token] / q[token])):
            return token
    return int(torch.multinomial(residual(P, siblings[-1][1]), 1, generator=generator))


def wrong_rule_iid(siblings, generator):
    """SpecInfer's rule for independent drafts (residual against the unchanged q), used on siblings drawn
    without replacement: a plausible mix-up that is not exact."""
    p = P.clone()
    for token, _ in siblings:
        if float(torch.rand((), generator=generator)) < min(1.0, float(p[token] / Q[token])):
            return token
        p = residual(p, Q)
    return int(torch.multinomial(p, 1, generator=generator))


def wrong_rule_no_renormalize(siblings, generator):
    """For point-mass siblings: tries each with the original p(x), never renormalizing after a refusal."""
    tried = []
    for token, _ in siblings:
        if float(torch.rand((), generator=generator)) < float(P[token]):
            return token
        tried.append(token)
    rest = P.clone()
    rest[tried] = 0.0
    return int(torch.multinomial(rest / rest.sum(), 1, generator=generator))


def counts(rule, siblings_of, n=20000, seed=0):
    generator = torch.Generator().manual_seed(seed)
    out = [0] * len(P)
    for _ in range(n):
        out[rule(siblings_of(generator), generator)] += 1
    return out


def test_sampled_siblings_keep_p():
    assert chi_square_p_value(counts(real_rule, draw_siblings), P.tolist()) > 0.001


def test_top_k_siblings_keep_p():
    assert chi_square_p_value(counts(real_rule, top_siblings), P.tolist()) > 0.001


def test_the_test_catches_wrong_sibling_rules():
    assert chi_square_p_value(counts(wrong_rule_fixed_p, draw_siblings), P.tolist()) < 1e-6
    assert chi_square_p_value(counts(wrong_rule_iid, draw_siblings), P.tolist()) < 1e-6
    assert chi_square_p_value(counts(wrong_rule_no_renormalize, top_siblings), P.tolist()) < 1e-6


def test_refused_siblings_are_recorded_with_their_draws():
    generator = torch.Generator().manual_seed(3)
    tree = one_level_tree(top_siblings(generator))
    for _ in range(200):
        verdict = accept_sampled(tree, torch.stack([P] * 3), generator)
        tried = list(verdict.examined)
        assert tried == tree.children(ROOT)[: len(tried)]  # in drafting order, stopping at the kept one
        for node in tried[:-1]:
            ratio, draw = verdict.examined[node]
            assert draw >= ratio
        if not verdict.path:  # all refused: the correction is none of the refused point masses
            assert verdict.next_token not in tree.ids


def _session_pairs(session, prompt, seeds):
    """The first two emitted tokens over many seeds (they may come from one tree step or two)."""
    pairs = []
    for seed in range(seeds):
        session.reset(prompt, seed=seed)
        session.run()
        pairs.append(tuple(session.new_token_ids[:2]))
    return pairs


def _check_pairs(verifier, session, prompt, pairs):
    ids = session.prompt_ids
    with torch.inference_mode():
        first = verifier.model(input_ids=torch.tensor([ids])).logits[0, -1].softmax(-1)
    first_counts = [0] * len(first)
    for a, _ in pairs:
        first_counts[a] += 1
    assert chi_square_p_value(first_counts, first.tolist()) > 0.001
    # The second token, after the most common first one: decided deeper in the tree, or in the next step.
    common = max(range(len(first_counts)), key=first_counts.__getitem__)
    with torch.inference_mode():
        second = verifier.model(input_ids=torch.tensor([ids + [common]])).logits[0, -1].softmax(-1)
    second_counts = [0] * len(second)
    for a, b in pairs:
        if a == common:
            second_counts[b] += 1
    assert sum(second_counts) > 100
    assert chi_square_p_value(second_counts, second.tolist()) > 0.001


def test_session_tree_sampling_matches_the_verifier(tiny, tiny_verifier):
    """End to end, a static tree with sampled children from a real drafter."""
    session = make_session(tiny_verifier, tiny["drafter"], tree="3,2", verify="sampling", draft_mode="sampled",
                           draft_temperature=1.5, max_new_tokens=2)
    prompt = "The future of"
    _check_pairs(tiny_verifier, session, prompt, _session_pairs(session, prompt, 1500))


def test_session_dynamic_tree_sampling_matches_the_verifier(tiny_verifier):
    """A dynamic tree (top-k children, pruned by probability) drafted by the verifier itself."""
    session = make_session(tiny_verifier, "early-exit:2", tree="dynamic:6", block_size=2, verify="sampling",
                           max_new_tokens=2)
    prompt = "The future of"
    _check_pairs(tiny_verifier, session, prompt, _session_pairs(session, prompt, 1500))
