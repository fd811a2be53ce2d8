"""--forward bf16: where this CPU's bf16 kernels are batch-invariant (probed at run time, engine/forward/bf16_probe.py),
speculative output equals plain decoding at that precision bit for bit, for chains and trees (engine/forward/fast_llama.py);
where they are not, a bf16 session is refused. Each exactness test checks whichever of the two the probe found, so
the suite passes on both kinds of CPU and still fails if exactness breaks where the probe claims it."""

import pytest
import torch

from conftest import make_session
from engine import EngineError
from engine.forward.bf16_probe import batch_variance
from engine.forward.fast_llama import FastLlamaLM, bf16_product
from engine.drafting.tree import DraftTree, ROOT, verify_inputs

PROMPTS = ["In a distant future,", "def add(a, b):", "a"]
NOT_EXACT = "--forward bf16 is not exact on this CPU: bf16 products here depend on the batch size"


def _plain(session, n):
    return list(session.baseline(n).token_ids[len(session.prompt_ids):])


def _bf16_exact(verifier) -> bool:
    return batch_variance(FastLlamaLM(verifier.model, verifier.vocab_size, verifier.device, "bf16")) is None


def _bf16_session(verifier, spec, **config):
    """The session, or None after checking that it is refused, as it must be where the probe found bf16 inexact."""
    if _bf16_exact(verifier):
        return make_session(verifier, spec, forward="bf16", **config)
    with pytest.raises(EngineError, match=NOT_EXACT):
        make_session(verifier, spec, forward="bf16", **config)
    return None


@pytest.mark.parametrize("block_size", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("drafter_spec", ["same", "drafter", "early-exit:2", "ngram"])
def test_bf16_chain_output_equals_bf16_plain_greedy(tiny, tiny_verifier, block_size, drafter_spec):
    spec = tiny["drafter"] if drafter_spec == "drafter" else drafter_spec
    session = _bf16_session(tiny_verifier, spec, block_size=block_size, draft_mode="greedy", max_new_tokens=24)
    if session is None:
        return
    assert session.verifier_lm.precision == "bf16"
    for prompt in PROMPTS:
        session.reset(prompt)
        session.run()
        assert session.new_token_ids == _plain(session, 24), (prompt, block_size, drafter_spec)


@pytest.mark.parametrize("tree", ["3,2,1,1", "2,2", "dynamic:6"])
@pytest.mark.parametrize("drafter_spec", ["drafter", "ngram"])
def test_bf16_tree_output_equals_bf16_plain_greedy(tiny, tiny_verifier, tree, drafter_spec):
    spec = tiny["drafter"] if drafter_spec == "drafter" else drafter_spec
    session = _bf16_session(tiny_verifier, spec, block_size=4, draft_mode="greedy", max_new_tokens=24, tree=tree)
    if session is None:
        return
    for prompt in PROMPTS:
        session.reset(prompt)
        session.run()
        assert session.new_token_ids == _plain(session, 24), (prompt, tree, drafter_spec)


def test_a_tokens_logits_are_the_same_bits_alone_in_a_block_and_as_a_tree_node(embedded):
    """The property the exactness rests on, on the real model: fp32 differs in the last bits between a 1-row and a
    5-row pass; bf16 with padded attention must not differ at all where the probe says this CPU allows it. Where it
    does not (an AMD EPYC without AMX: a decoder layer's 8-row pass differs), a bf16 session of the model is refused."""
    lm = FastLlamaLM(embedded.model, embedded.vocab_size, embedded.device, precision="bf16")
    if batch_variance(lm) is not None:
        with pytest.raises(EngineError, match=NOT_EXACT):
            make_session(embedded, "ngram", forward="bf16")
        return
    prompt = embedded.tokenizer("The history of the printing press begins")["input_ids"]
    lm.extend(prompt[:-1])
    logits = lm.extend(prompt[-1:])
    start = lm.length
    tokens, alone = [], []
    for _ in range(40):  # plain decoding, one token per pass
        tokens.append(int(logits[-1].argmax()))
        logits = lm.extend(tokens[-1:])
        alone.append(logits[0])
    # Verify passes of `size` rows over the same tokens; 33 rows: a tree of 32 nodes and its pending token, past the
    # 32 rows where oneDNN's bf16 kernel changes (fast_llama._BF16_ROWS).
    for size in (2, 3, 5, 9, 33):
        lm.rollback(start)
        for first in range(0, 40 - size + 1, size):
            block = lm.extend(tokens[first:first + size], keep=size)
            for row in range(size):
                # Without the padded key axis this fails from about the 5th token on (rounding of a shorter softmax).
                assert torch.equal(block[row], alone[first + row]), (size, first + row)
    # As a tree: a decoy sibling before each real node, so the real path's keys are not contiguous in the pass.
    lm.rollback(start - 1)  # the prompt's last token goes in as the pass's pending token, as in a step
    tree = DraftTree()
    parent = ROOT
    for token in tokens[:3]:
        tree.add((token + 1) % embedded.vocab_size, parent, None, 1.0, None)
        parent = tree.add(token, parent, None, 1.0, None)
    ids, mask, positions = verify_inputs(tree, prompt[-1:], start - 1)
    out = lm.extend(ids, keep=len(tree) + 1, positions=positions, mask=mask)
    real_nodes = [1, 3, 5]  # tree rows of the real tokens (each after its decoy)
    for depth, node in enumerate(real_nodes):
        assert torch.equal(out[node + 1], alone[depth]), depth  # +1: row 0 of `out` is the pending slot


def test_bf16_keeps_the_model_fp32_and_shares_one_bf16_copy(embedded):
    first = FastLlamaLM(embedded.model, embedded.vocab_size, embedded.device, precision="bf16")
    second = FastLlamaLM(embedded.model, embedded.vocab_size, embedded.device, precision="bf16")
    assert embedded.model.model.layers[0].mlp.up_proj.weight.dtype == torch.float32
    assert first.layers[0][7].dtype == torch.bfloat16 and first.layers[0][7] is second.layers[0][7]
    assert first.cache.dtype == torch.bfloat16


def test_bf16_refuses_a_verifier_the_lean_forward_cannot_run(tiny):
    from engine.models.loading import load_model

    verifier = load_model(tiny["verifier"])
    verifier.model.to(torch.float16)  # not fp32: the lean forward does not take it
    with pytest.raises(EngineError, match="--forward bf16.*--forward auto"):
        make_session(verifier, "ngram", forward="bf16")


def test_bf16_falls_back_for_a_drafter_the_lean_forward_cannot_run(tiny):
    """A drafter's precision does not matter for exactness: it keeps transformers' forward instead of failing."""
    from engine.forward.cached_lm import CachedLM, open_cached_lm
    from engine.models.loading import load_model

    drafter = load_model(tiny["drafter"], lean=False)
    drafter.model.to(torch.float16)
    assert isinstance(open_cached_lm(drafter.model, drafter.vocab_size, drafter.device, "bf16"), CachedLM)


def test_headless_bf16_run_is_lossless_against_bf16_plain_decoding(tiny, tiny_verifier, capsys):
    import json

    from specdec_tui.cli import main

    if not _bf16_exact(tiny_verifier):
        assert main(["--headless", "--verifier", tiny["verifier"], "--forward", "bf16", "--max-new-tokens", "4"]) == 2
        assert NOT_EXACT in capsys.readouterr().err
        return
    code = main(["--headless", "--json", "--verifier", tiny["verifier"], "--drafter", tiny["drafter"], "--forward",
                 "bf16", "--draft-mode", "greedy", "--max-new-tokens", "16", "--compare-baseline"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["forward"] == "bf16" and summary["lossless"] is True
    assert main(["--headless", "--verifier", tiny["verifier"], "--forward", "bf16", "--max-new-tokens", "4"]) == 0
    assert "forward=bf16" in capsys.readouterr().out


def test_the_probe_finds_a_pass_whose_rows_depend_on_the_batch_size(tiny_verifier):
    """Whatever this CPU does: a product that rounds differently once rows share a pass is caught, and named."""
    lm = FastLlamaLM(tiny_verifier.model, tiny_verifier.vocab_size, tiny_verifier.device, "bf16")
    lm.head = lm.head.clone()  # its own probe result: results are kept per head tensor
    lm.product = lambda x, w: bf16_product(x, w) * (1.0 + 1e-3 * (x.shape[0] > 3))
    assert "pass of 4 rows differs from the same rows one at a time" in batch_variance(lm)


def test_an_inexact_cpu_refuses_bf16_with_the_reason_and_keeps_fp32(tiny_verifier, monkeypatch):
    """The refusal path, checked on every CPU (on an AMX Xeon the probe passes, so the tests above never reach it)."""
    import engine.forward.bf16_probe as probe

    monkeypatch.setattr(probe, "batch_variance", lambda lm: "a decoder layer's pass of 8 rows differs")
    with pytest.raises(EngineError, match=NOT_EXACT + r" \(a decoder layer's pass of 8 rows differs\).*--forward auto"):
        make_session(tiny_verifier, "ngram", forward="bf16")
    assert make_session(tiny_verifier, "ngram").verifier_lm.precision == "fp32"
