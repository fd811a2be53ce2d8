"""training/make_data.py's own generation loop: the same text as transformers' generate, the features of that text,
and top-p sampling that draws only from the top-p set, in proportion."""

from __future__ import annotations


import pytest
import torch

from training import make_data

PROMPTS = ["In a distant future,", "def add(a, b):\n    return", "The drafter proposes, the verifier checks", "print("]


@pytest.fixture(scope="module")
def tiny_transformers(tiny):
    from engine.models.loading import load_model

    loaded = load_model(tiny["verifier"], lean=False)
    loaded.tokenizer.pad_token = loaded.tokenizer.eos_token  # the tiny tokenizer has none; batches are left-padded
    return loaded.model, loaded.tokenizer


def test_batched_greedy_continuations_match_generate_prompt_by_prompt(tiny_transformers):
    model, tokenizer = tiny_transformers
    records = make_data.generate_shard(model, tokenizer, PROMPTS, 16)
    eos = tokenizer.eos_token_id
    for record, prompt in zip(records, PROMPTS):
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        with torch.inference_mode():
            reference = model.generate(ids, max_new_tokens=16, do_sample=False, pad_token_id=eos)[0].tolist()
        if eos in reference[ids.shape[1]:]:
            reference = reference[: reference.index(eos, ids.shape[1]) + 1]
        assert record["ids"] == reference
        assert record["prompt_len"] == ids.shape[1]


def test_recorded_features_are_the_verifiers_hidden_states_of_that_text(tiny_transformers):
    model, tokenizer = tiny_transformers
    records = make_data.generate_shard(model, tokenizer, PROMPTS, 16)
    for record in records:
        captured = []
        hook = model.model.norm.register_forward_hook(lambda module, args, output: captured.append(args[0]))
        with torch.inference_mode():
            model(torch.tensor([record["ids"][:-1]]))
        hook.remove()
        expected = captured[0][0]
        assert record["features"].shape == expected.shape  # every fed position, all but the last token
        assert torch.allclose(record["features"].float(), expected, rtol=1e-2, atol=1e-2)


def test_top_p_draws_only_from_the_top_p_set_and_in_proportion():
    torch.manual_seed(0)
    p = torch.tensor([0.5, 0.3, 0.15, 0.04, 0.01])
    logits = torch.full((4000, 300), -30.0)  # 300 > the 256 candidates: the tail must not matter
    logits[:, [7, 3, 250, 0, 299]] = p.log()
    tokens = make_data.next_tokens(logits, temperature=1.0, top_p=0.9)
    # Mass before each: 0, 0.5, 0.8, 0.95: the top-p set is the first three (0.5 + 0.3 + 0.15 >= 0.9).
    assert set(tokens.tolist()) == {7, 3, 250}
    shares = torch.tensor([(tokens == t).float().mean() for t in (7, 3, 250)])
    assert torch.allclose(shares, p[:3] / p[:3].sum(), atol=0.03)
    assert make_data.next_tokens(logits[:2], temperature=0.0).tolist() == [7, 7]


@pytest.mark.parametrize("taps", [(), (1, 2)])
def test_train_head_prepares_shards_and_trains_in_bf16_on_its_packed_fp16_rows(tiny_transformers, tiny_verifier,
                                                                               tmp_path, monkeypatch, taps):
    """make_data.py's shards through the script's own prepare and loop (not tests/helpers/tiny_head.py's): rows keep fp16
    features (and the tapped layers' normalised inputs), steps run under bf16 autocast, the loss falls."""
    import argparse

    from training import train_head
    from engine.forward.fast_llama import FastLlamaLM
    from engine.drafting.draft_head import tapped_rows

    model, tokenizer = tiny_transformers
    data = tmp_path / "data"
    data.mkdir()
    torch.save(make_data.generate_shard(model, tokenizer, PROMPTS, 40, taps=taps), data / "shard-0000.pt")
    monkeypatch.setattr(train_head, "WORK", tmp_path)  # its checkpoint, not training/work's
    prepared = train_head.prepare(data, tiny_verifier, 160, parts="a")
    assert prepared["tap_layers"] == taps and len(prepared["sequences"]) == len(PROMPTS)
    if taps:  # the recorded inputs, normalised, are what the verifier's stream hands the drafter
        tokens, _, _, tapped = prepared["sequences"][0]
        lm = FastLlamaLM(tiny_verifier.model, tiny_verifier.vocab_size, tiny_verifier.device)
        lm.tap_layers = taps
        lm.extend(tokens.tolist())
        size = tiny_verifier.model.config.hidden_size
        streamed = tapped_rows(tiny_verifier.model, lm.hidden[:, :-size], taps)
        assert torch.allclose(tapped.float(), streamed, atol=2e-2)
    args = argparse.Namespace(seed=0, row=128, batch=2, epochs=40, lr=3e-3, depth=3, soft=1.0, precision="bf16",
                              init=None, restart=True, log_every=1000, checkpoint_every=1000)
    trained = train_head.train(args, tiny_verifier, prepared)
    losses = [h["loss"] for h in trained["history"]]
    assert sum(losses[-5:]) / 5 < 0.75 * losses[0]
    assert (trained["head"].fuse is not None) == bool(taps)
    assert (tmp_path / "checkpoint.pt").exists()


def test_a_data_folder_resumes_only_with_the_settings_that_made_its_shards(tmp_path):
    layout = {"batch": 512, "max_new_tokens": 128, "precision": "bf16", "limit": 0, "taps": [2, 15]}
    make_data.check_layout(tmp_path, layout)
    make_data.check_layout(tmp_path, dict(layout))  # a rerun with the same settings resumes
    with pytest.raises(SystemExit, match="batch.: 512"):
        make_data.check_layout(tmp_path, {**layout, "batch": 128})  # shard i would be other prompts
    with pytest.raises(SystemExit, match="taps"):
        make_data.check_layout(tmp_path, {**layout, "taps": []})  # shards without the tapped layers' inputs
    before_taps = tmp_path / "before-taps"
    before_taps.mkdir()
    (before_taps / "layout.json").write_text('{"batch": 512, "max_new_tokens": 128, "precision": "bf16", "limit": 0}')
    make_data.check_layout(before_taps, {**layout, "taps": []})  # a folder from before --taps recorded none
    older = tmp_path / "older"
    older.mkdir()
    (older / "shard-c-0000.pt").write_bytes(b"")
    with pytest.raises(SystemExit, match="older make_data.py"):
        make_data.check_layout(older, layout)
