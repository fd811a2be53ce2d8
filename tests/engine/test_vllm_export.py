"""engine/models/vllm_export.py: the folder written for a vLLM server loads with transformers, strictly, and computes the
engine's logits. No vllm here: tests/engine/test_vllm_server.py serves the exported embedded model for real."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from conftest import CORPUS, build_tokenizer


def strict_transformers_load(folder):
    """The exported folder through transformers, failing on any missing or unexpected weight (vLLM's loader
    does not fill a missing embedding from a tied head: it serves uniform logits instead)."""
    from transformers import AutoModelForCausalLM

    model, info = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    return model.eval()


def stored_names(folder) -> set[str]:
    with safe_open(str(folder / "model.safetensors"), "pt") as handle:
        return set(handle.keys())


def logits(model, ids):
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids])).logits[0]


IDS = [5, 17, 42, 3, 99, 150, 7, 64, 200, 11]


def test_an_untied_model_exports_both_matrices_and_the_same_logits(tiny_verifier, tmp_path):
    from engine.models.vllm_export import export_for_vllm

    out = export_for_vllm(tiny_verifier, tmp_path / "served")
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert {"model.embed_tokens.weight", "lm_head.weight"} <= stored_names(out)
    assert (out / "tokenizer.json").is_file()
    exported = strict_transformers_load(out)
    torch.testing.assert_close(logits(exported, IDS), logits(tiny_verifier.model, IDS), rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def tied_cache(tmp_path_factory):
    """A folder written as the engine writes its GGUF cache (models._write_dequantized) for a model whose output
    head is tied to its embeddings, as SmolLM2's is: `architectures` is null, the tied matrix stored once."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from engine.models.loading import _write_dequantized

    root = tmp_path_factory.mktemp("tied")
    build_tokenizer(root / "tok", CORPUS, 320)
    tokenizer = AutoTokenizer.from_pretrained(str(root / "tok"))
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True, initializer_range=0.25)
    torch.manual_seed(3)
    model = LlamaForCausalLM(config).eval()
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    model.config.architectures = None  # as a GGUF-dequantized config has it
    cache = root / "cache"
    cache.mkdir()
    _write_dequantized(model, tokenizer, cache)
    return cache


def test_the_engine_cache_layout_is_what_vllm_cannot_serve(tied_cache):
    """The premise: the cache keeps the tied matrix under one name, and says nothing of the architecture."""
    assert json.loads((tied_cache / "config.json").read_text()).get("architectures") is None
    assert len(stored_names(tied_cache) & {"model.embed_tokens.weight", "lm_head.weight"}) == 1


@pytest.mark.parametrize("source", ["folder", "lean model"])
def test_a_tied_cache_exports_its_embeddings_and_the_engine_logits(tied_cache, tmp_path, source):
    from engine.models.lean_llama import LeanLlamaForCausalLM
    from engine.models.lean_tokenizer import LeanTokenizer
    from engine.models.loading import LoadedModel
    from engine.models.vllm_export import export_for_vllm

    engine_model = LeanLlamaForCausalLM.from_folder(tied_cache)  # how the engine loads its cache
    if source == "folder":
        out = export_for_vllm(tied_cache, tmp_path / "served")
    else:
        loaded = LoadedModel(name="tied", model=engine_model, tokenizer=LeanTokenizer(tied_cache), device=torch.device("cpu"))
        out = export_for_vllm(loaded, tmp_path / "served")
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["tie_word_embeddings"] is True
    assert stored_names(out) >= {"model.embed_tokens.weight"}
    assert "lm_head.weight" not in stored_names(out)  # tied: vLLM and transformers tie it to the embeddings
    assert {p.name for p in out.iterdir()} >= {"tokenizer.json", "tokenizer_config.json", "config.json", "model.safetensors"}
    exported = strict_transformers_load(out)
    torch.testing.assert_close(exported.model.embed_tokens.weight, engine_model.lm_head.weight, rtol=0, atol=0)
    torch.testing.assert_close(logits(exported, IDS), logits(engine_model, IDS), rtol=0, atol=1e-5)


def test_a_model_that_is_not_llama_is_refused_with_the_reason(tmp_path):
    from engine.errors import ModelLoadError
    from engine.models.vllm_export import servable_config

    state = {"model.embed_tokens.weight": torch.zeros(2, 2)}
    with pytest.raises(ModelLoadError, match="'gpt2' model"):
        servable_config({"model_type": "gpt2"}, state)
    assert servable_config({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}, state)["architectures"] == ["GPT2LMHeadModel"]


def test_untied_weights_without_an_output_head_are_refused():
    from engine.errors import ModelLoadError
    from engine.models.vllm_export import servable_state

    with pytest.raises(ModelLoadError, match="lm_head.weight is missing"):
        servable_state({"model.embed_tokens.weight": torch.zeros(2, 2)}, tied=False)
    with pytest.raises(ModelLoadError, match="no model.embed_tokens.weight"):
        servable_state({"lm_head.weight": torch.zeros(2, 2)}, tied=False)
