"""Greedy speculative decoding must reproduce the verifier's own greedy decoding, token for token.

In fp32 a token's logits differ in the last bits between a 1-row pass and an n-row verify pass (the kernels sum in
another order), so "token for token" rests on no near-tie between the top two logits along these paths: the last
test below checks that margin, so a failure here from a tie would show as such. The matmul layout, chosen by timing
in a real run (engine/forward/matmul.py), is pinned by conftest.py; the w-first layout gets its own runs here (one row as itself, or as two).
"""

import pytest

from conftest import make_session, plain_greedy

PROMPTS = ["In a distant future,", "def add(a, b):", "The drafter proposes, the verifier", "a"]


# One loop for chains and trees (engine/session.py): every shape goes through the same test.
CHAINS = [pytest.param(None, k, id=f"chain-k{k}") for k in range(1, 9)]
TREES = [pytest.param(tree, 4, id=f"tree-{tree}") for tree in ("3,2,1,1", "2,2,2", "dynamic:8", "1,1,1,1")]


@pytest.mark.parametrize("tree, block_size", CHAINS + TREES)
@pytest.mark.parametrize("drafter_spec", ["same", "drafter", "early-exit:2", "ngram"])
@pytest.mark.parametrize("draft_mode", ["greedy", "sampled"])
@pytest.mark.parametrize("forward", ["auto", "transformers"])  # the engine's lean Llama forward, and the model's own
def test_greedy_output_equals_plain_greedy(tiny, tiny_verifier, tree, block_size, drafter_spec, draft_mode, forward):
    spec = tiny["drafter"] if drafter_spec == "drafter" else drafter_spec
    session = make_session(tiny_verifier, spec, block_size=block_size, tree=tree, draft_mode=draft_mode,
                           max_new_tokens=24, forward=forward)
    for prompt in PROMPTS:
        session.reset(prompt)
        session.run()
        expected = plain_greedy(tiny_verifier, session.prompt_ids, 24)
        assert session.new_token_ids == expected, (prompt, tree, block_size, drafter_spec)
        # Stats add up to what was produced.
        assert session.stats.new_tokens == len(expected)
        assert session.stats.verifier_calls == session.stats.steps
        assert session.stats.tree_steps == (session.stats.steps if tree else 0)


def test_a_different_drafter_is_really_different(tiny, tiny_verifier):
    """The 1-layer drafter must disagree sometimes, or the lossless test above proves little."""
    session = make_session(tiny_verifier, tiny["drafter"], block_size=4, draft_mode="greedy", max_new_tokens=40)
    session.reset("In a distant future,")
    session.run()
    assert 0 < session.stats.accepted < session.stats.drafted


def test_same_drafter_greedy_accepts_everything(tiny_verifier):
    session = make_session(tiny_verifier, "same", block_size=4, draft_mode="greedy", max_new_tokens=20)
    session.reset("In a distant future,")
    results = session.run()
    assert session.stats.acceptance_rate == 1.0
    assert all(r.positions[-1].decision.value in ("bonus", "stopped") for r in results)


def test_one_verifier_pass_per_step(tiny, tiny_verifier, monkeypatch):
    session = make_session(tiny_verifier, tiny["drafter"], block_size=5, max_new_tokens=30)
    session.reset("In a distant future,")
    calls = []
    original = session.verifier_lm.extend
    monkeypatch.setattr(session.verifier_lm, "extend", lambda ids, keep=1: calls.append(len(ids)) or original(ids, keep))
    session.run()
    assert len(calls) == session.stats.steps
    # Each pass feeds only what the cache lacks plus the drafts, never the whole context again.
    assert max(calls) <= 5 + 2


def test_no_bonus_reproduces_the_notebook_counts(tiny_verifier):
    session = make_session(tiny_verifier, "same", block_size=3, draft_mode="greedy", bonus=False, max_new_tokens=12)
    session.reset("In a distant future,")
    results = session.run()
    assert [len(r.emitted) for r in results] == [3, 3, 3, 3]
    assert session.new_token_ids == plain_greedy(tiny_verifier, session.prompt_ids, 12)


@pytest.mark.parametrize("one_row", ["W @ x.T", "W @ [x; x].T"])
@pytest.mark.parametrize("drafter_spec", ["drafter", "ngram"])
def test_greedy_output_equals_plain_greedy_in_the_other_matmul_layouts(tiny, tiny_verifier, drafter_spec, one_row,
                                                                      monkeypatch):
    """Where timing picks `W @ x.T`, and one row (plain steps, drafting passes) as itself or as two rows."""
    import engine.forward.matmul as matmul

    monkeypatch.setenv("SPECDEC_MATMUL", "w-first")
    monkeypatch.setattr(matmul, "_LAYOUT", {1: one_row})
    spec = tiny["drafter"] if drafter_spec == "drafter" else drafter_spec
    session = make_session(tiny_verifier, spec, block_size=4, max_new_tokens=24)
    for prompt in PROMPTS:
        session.reset(prompt)
        session.run()
        assert session.new_token_ids == plain_greedy(tiny_verifier, session.prompt_ids, 24), prompt
    assert set(matmul.planned().values()) == {"W @ x.T", one_row}


def test_the_lossless_prompts_have_no_near_tie_on_their_greedy_paths(tiny_verifier):
    """What the fp32 lossless tests rely on: the top-two logit gap along each greedy path is far above the 1e-5 or so
    by which a 1-row and an n-row pass can differ."""
    import torch

    tokenizer = tiny_verifier.tokenizer
    for prompt in PROMPTS:
        ids = tokenizer(prompt)["input_ids"]
        path = ids + plain_greedy(tiny_verifier, ids, 24)
        with torch.inference_mode():
            logits = tiny_verifier.model(torch.tensor([path])).logits[0, len(ids) - 1 : -1]
        top2 = logits.topk(2, dim=-1).values
        assert float((top2[:, 0] - top2[:, 1]).min()) > 1e-3, prompt
