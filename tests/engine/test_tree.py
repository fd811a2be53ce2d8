"""Tree drafts: tree masks and positions, KV compaction, records (greedy output identical to plain greedy for chains
and trees alike: test_greedy_lossless.py)."""

import pytest
import torch

from conftest import make_session, plain_greedy
from engine import ConfigError, Decision, SpecConfig
from engine.verification.acceptance import accept_greedy
from engine.drafting.tree import ROOT, DraftTree, verify_inputs
from engine.drafting.tree_draft import _most_probable, ngram_continuations
from engine.drafting.tree_shape import parse_tree

PROMPTS = ["In a distant future,", "def add(a, b):", "The drafter proposes, the verifier", "a"]


def fresh_logits(model, ids):
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids])).logits[0, -1].float()


@pytest.mark.parametrize("forward", ["auto", "transformers"])
@pytest.mark.parametrize("tree", ["3,2,1,1", "2,3,2"])
def test_same_drafter_greedy_tree_keeps_its_full_depth(tiny_verifier, forward, tree):
    """The verifier drafting for itself agrees at every depth: a wrong drafter mask (siblings seeing each other)
    or wrong positions would break this below the second level."""
    depth = len(parse_tree(tree).widths)
    session = make_session(tiny_verifier, "same", tree=tree, draft_mode="greedy", max_new_tokens=30, forward=forward)
    session.reset("In a distant future,")
    results = session.run()
    for result in results[:-1]:  # the last step may be cut by max_new_tokens
        assert len(result.tree.path) == depth
        assert len(result.emitted) == depth + 1
        assert result.emitted[-1].source.value == "bonus"


@pytest.mark.parametrize("forward", ["auto", "transformers"])
def test_every_tree_node_gets_the_logits_of_its_own_path(tiny_verifier, forward):
    """One pass over a tree = each node's path decoded alone: the mask hides siblings, positions follow depth."""
    session = make_session(tiny_verifier, "same", forward=forward)
    session.reset("The future of AI is")
    context = session.tokens
    tree = DraftTree()
    a = tree.add(10, ROOT, None, 1.0, None)
    b = tree.add(11, ROOT, None, 1.0, None)
    c = tree.add(12, a, None, 1.0, None)
    tree.add(13, b, None, 1.0, None)
    tree.add(14, c, None, 1.0, None)
    lm = session.verifier_lm
    tokens, mask, positions = verify_inputs(tree, context[lm.length :], lm.length)
    logits = lm.extend(tokens, keep=len(tree) + 1, positions=positions, mask=mask)
    assert torch.allclose(logits[0], fresh_logits(tiny_verifier.model, context), atol=1e-4)
    for node in range(len(tree)):
        path = [tree.ids[n] for n in tree.path_to(node)]
        assert torch.allclose(logits[node + 1], fresh_logits(tiny_verifier.model, context + path), atol=1e-4), node


@pytest.mark.parametrize("forward", ["auto", "transformers"])
def test_drafter_distributions_in_a_tree_are_its_own_on_each_path(tiny, tiny_verifier, forward):
    """The drafter feeds each depth in one pass over its cache: each node's children come from the drafter's
    real distribution after that node's path (checked against a recompute from scratch)."""
    session = make_session(tiny_verifier, tiny["drafter"], tree="3,2,1", draft_mode="greedy", forward=forward)
    session.reset("In a distant future,")
    draft = session.drafter.draft_tree(session.tokens, parse_tree("3,2,1"), 3, session._knobs(), session.generator)
    tree = draft.tree
    assert len(tree) == 3 + 6 + 6
    drafter_model = session.drafter.lm.model
    for node in range(len(tree)):
        parent_path = [tree.ids[n] for n in tree.path_to(tree.parents[node])]
        expected = fresh_logits(drafter_model, session.tokens + parent_path).softmax(-1)
        assert torch.allclose(tree.drafter_probs[node], expected, atol=1e-4), node
    # Top-k children: distinct, in the drafter's order.
    for parent in [ROOT] + list(range(len(tree))):
        kids = [tree.ids[c] for c in tree.children(parent)]
        assert len(set(kids)) == len(kids)


@pytest.mark.parametrize("forward", ["auto", "transformers"])
@pytest.mark.parametrize("tree", ["3,2,1,1", "dynamic:10"])
def test_compacted_caches_equal_a_recompute(tiny, tiny_verifier, forward, tree):
    session = make_session(tiny_verifier, tiny["drafter"], tree=tree, draft_mode="sampled", max_new_tokens=40,
                           forward=forward)
    session.reset("In a distant future,")
    off_first_branch = 0
    for _ in range(8):
        result = session.step()
        # A path that leaves the first branch means rows were really moved, not just truncated.
        off_first_branch += any(n != result.tree.children(result.tree.nodes[n].parent)[0].index for n in result.tree.path)
        assert session.verifier_lm.length == len(session.tokens) - 1
        assert session.drafter.lm.length <= len(session.tokens) - 1
        if session.finished:
            break
    assert off_first_branch > 0
    cached = session.verifier_lm.catch_up(session.tokens)[-1]
    assert torch.allclose(cached, fresh_logits(tiny_verifier.model, session.tokens), atol=1e-4)
    drafter_lm = session.drafter.lm
    assert torch.allclose(drafter_lm.catch_up(session.tokens)[-1], fresh_logits(drafter_lm.model, session.tokens), atol=1e-4)


def test_one_verifier_pass_per_tree_step(tiny, tiny_verifier, monkeypatch):
    session = make_session(tiny_verifier, tiny["drafter"], tree="3,2,1", max_new_tokens=30)
    session.reset("In a distant future,")
    calls = []
    original = session.verifier_lm.extend
    monkeypatch.setattr(session.verifier_lm, "extend",
                        lambda ids, keep=1, **kw: calls.append(len(ids)) or original(ids, keep, **kw))
    results = session.run()
    assert len(calls) == session.stats.steps
    assert calls == [1 + r.drafted for r in results[:1]] + [1 + r.drafted for r in results[1:]]


def test_tree_step_records(tiny, tiny_verifier):
    session = make_session(tiny_verifier, tiny["drafter"], tree="3,2,1", draft_mode="greedy", max_new_tokens=30)
    session.reset("In a distant future,")
    for result in session.run():
        tree = result.tree
        assert result.drafted == len(tree.nodes) and result.accepted == len(tree.path)
        assert all(n.parent < n.index for n in tree.nodes)
        assert [tree.nodes[n].decision for n in tree.path] == [Decision.ACCEPTED] * len(tree.path)
        # Along the path, each node is the verifier's choice after its parent.
        choices = [tree.root_verifier_id] + [tree.nodes[n].verifier_id for n in tree.path]
        assert [tree.nodes[n].token_id for n in tree.path] == choices[: len(tree.path)]
        assert [t.token_id for t in result.emitted] == [tree.nodes[n].token_id for n in tree.path] + choices[-1:]
        # Refused nodes are exactly the tried children off the path.
        last = tree.path[-1] if tree.path else -1
        for node in tree.children(last):
            assert node.decision is Decision.REJECTED
        # The chain view shows the path, then the first refused child (or the bonus).
        assert [p.draft_id for p in result.positions[: len(tree.path)]] == [tree.nodes[n].token_id for n in tree.path]
        assert result.positions[-1].decision in (Decision.REJECTED, Decision.BONUS)
        assert result.emitted_text == "".join(t.piece for t in result.emitted)
    stats = session.stats
    assert stats.nodes_per_step == pytest.approx(stats.drafted / stats.steps)
    assert stats.tokens_per_verifier_call == pytest.approx(stats.new_tokens / stats.steps)


def test_tree_steps_survive_a_trace(tiny, tiny_verifier, tmp_path):
    from engine.records.trace import step_from_record, step_record

    session = make_session(tiny_verifier, tiny["drafter"], tree="2,2", verify="sampling", max_new_tokens=10)
    session.reset("In a distant future,")
    result = session.step()
    import json

    again = step_from_record(json.loads(json.dumps(step_record(result))))
    assert again == result


def test_greedy_rule_follows_the_argmax():
    tree = DraftTree()
    a = tree.add(5, ROOT, None, 1.0, None)
    b = tree.add(6, ROOT, None, 1.0, None)
    tree.add(7, a, None, 1.0, None)
    d = tree.add(8, b, None, 1.0, None)
    # Verifier: after root -> 6 (second branch), after b -> 8, after d -> 9 (leaf: bonus).
    argmax = [6, 0, 8, 0, 9]
    verdict = accept_greedy(tree, argmax)
    assert verdict.path == (b, d) and verdict.next_token == 9
    verdict = accept_greedy(tree, [4, 0, 0, 0, 0])
    assert verdict.path == () and verdict.next_token == 4 and set(verdict.examined) == {a, b}


def test_dynamic_selection_keeps_the_most_probable_nodes_as_a_tree():
    tree = DraftTree()
    cumulative = []
    for token, parent, q in [(1, ROOT, 0.6), (2, ROOT, 0.3), (3, 0, 0.9), (4, 0, 0.05), (5, 1, 0.9), (6, 2, 0.5)]:
        tree.add(token, parent, None, q, None)
        cumulative.append(q * (cumulative[parent] if parent != ROOT else 1.0))
    # cumulative: 0.6, 0.3, 0.54, 0.03, 0.27, 0.27
    assert sorted(_most_probable(tree, cumulative, 3)) == [0, 1, 2]
    assert sorted(_most_probable(tree, cumulative, 5)) == [0, 1, 2, 4, 5]


def test_ngram_offers_several_earlier_matches():
    context = [1, 2, 3, 9, 1, 2, 4, 8, 1, 2]
    assert ngram_continuations(context, 3, 2, 3) == [[4, 8], [3, 9]]


def test_a_tree_from_lookup_keeps_the_chains_shortest_match():
    """ngram+head's lookup copies only after a 2-token match, in a tree as in a chain: the 1-token match of `2`
    (followed by 7) is no branch there, while plain ngram (1-token matches allowed) offers it."""
    from engine.drafting.drafters import LookupHeadDrafter, NgramDrafter

    context = [1, 2, 3, 9, 5, 2, 7, 6, 1, 2]
    shape = parse_tree("3")
    strict = NgramDrafter(100, 3, min_n=LookupHeadDrafter.MIN_MATCH).draft_tree(context, shape, 1, None, None).tree
    loose = NgramDrafter(100, 3).draft_tree(context, shape, 1, None, None).tree
    assert strict.ids == [3] and loose.ids == [3, 7]


def test_ngram_tree_in_a_session_branches(tiny_verifier):
    session = make_session(tiny_verifier, "ngram", tree="3,1", draft_mode="greedy", max_new_tokens=8)
    session.reset("so the cat sat. the dog ran. the")
    result = session.step()
    assert len(result.tree.children(-1)) >= 2


@pytest.mark.parametrize("spec, message", [
    ("3,x", "comma-separated"), ("0,1", "1..8"), ("dynamic", "node budget"), ("dynamic:0", "node budget"),
    ("8,8,8", "nodes"), (",".join(["1"] * 17), "levels deep"),
])
def test_bad_tree_specs_say_what_is_wrong(spec, message):
    with pytest.raises(ConfigError, match=message):
        SpecConfig(tree=spec).validated()


def test_chain_configs_are_unchanged():
    assert SpecConfig().tree is None and parse_tree("") is None
    assert parse_tree("3,2,1,1").max_nodes(4) == 3 + 6 + 6 + 6


@pytest.mark.parametrize("tree", ["3,2,1", "2,2,2", "dynamic:6"])
@pytest.mark.parametrize("draft_mode", ["greedy", "sampled"])
def test_a_draft_head_drafts_real_trees_losslessly(tiny_head, tiny_verifier, tree, draft_mode):
    """The head branches (its tree view), and after each tree pass it gets the features of the context and the
    accepted path only, so it keeps drafting well and the output stays the verifier's own."""
    session = make_session(tiny_verifier, f"head:{tiny_head[0]}", tree=tree, block_size=3, draft_mode=draft_mode,
                           max_new_tokens=30)
    for prompt in PROMPTS[:2]:
        session.reset(prompt)
        results = session.run()
        assert session.new_token_ids == plain_greedy(tiny_verifier, session.prompt_ids, 30)
    assert any(len(r.tree.children(-1)) > 1 for r in results)
    assert session.stats.accepted > 0  # the head drafts something useful, so features lined up


def test_a_head_tree_node_sees_what_a_chain_through_it_would(tiny_head, tiny_verifier):
    """Each node's distribution is the head's prediction from its own parent's feature: the first-child path is
    the greedy chain, and a second child at depth 1 gets what a chain drafting that token would compute."""
    spec = f"head:{tiny_head[0]}"
    session = make_session(tiny_verifier, spec, tree="2,2,2", block_size=3, draft_mode="greedy", max_new_tokens=8)
    session.reset("The drafter proposes, the verifier")
    session.step()  # the head now has real features and an accepted continuation
    context, knobs = session.tokens, session._knobs()
    tree = session.drafter.draft_tree(context, parse_tree("2,2,2"), 3, knobs, torch.Generator()).tree
    chain = make_session(tiny_verifier, spec, block_size=3, draft_mode="greedy", max_new_tokens=8)
    chain.reset("The drafter proposes, the verifier")
    chain.step()
    proposal = chain.drafter.propose(context, 3, knobs, torch.Generator())
    first_path = [tree.children(-1)[0]]
    while tree.children(first_path[-1]):
        first_path.append(tree.children(first_path[-1])[0])
    assert [tree.ids[n] for n in first_path] == proposal.ids
    for node, shown in zip(first_path, proposal.drafter_probs):
        assert torch.allclose(tree.drafter_probs[node], shown, atol=1e-5)
    # The second child at depth 1: a fresh chain fed [root feature, that token] predicts its children.
    second = tree.children(-1)[1]
    chain.drafter.rollback(len(context) - 1)
    with torch.inference_mode():
        root_feature = chain.drafter.enter(context)
        after = chain.drafter._forward(root_feature[None], [tree.ids[second]], len(context))[-1]
        expected = chain.drafter._logits(after).softmax(-1)
    assert torch.allclose(tree.drafter_probs[tree.children(second)[0]], expected, atol=1e-5)
