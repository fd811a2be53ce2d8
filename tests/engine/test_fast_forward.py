"""The engine's lean Llama forward must compute what the transformers model computes."""

import copy

import pytest
import torch

from conftest import make_session
from engine.forward import fast_llama
from engine.forward.cached_lm import CachedLM, open_cached_lm
from engine.drafting.drafters import early_exit_view

IDS = [5, 17, 42, 9, 101, 7, 64, 33, 2, 250, 11, 19]


def reference_logits(model, ids):
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids])).logits[0].float()


def test_logits_match_transformers_through_prefill_steps_and_rollback(tiny_verifier):
    model = tiny_verifier.model
    lm = open_cached_lm(model, tiny_verifier.vocab_size, tiny_verifier.device)
    assert isinstance(lm, fast_llama.FastLlamaLM)
    prefill = lm.extend(IDS[:6], keep=6)
    assert torch.allclose(prefill, reference_logits(model, IDS[:6]), atol=1e-4)
    block = lm.extend(IDS[6:11], keep=5)  # a verify-sized pass over a warm cache
    assert torch.allclose(block, reference_logits(model, IDS[:11])[6:11], atol=1e-4)
    lm.rollback(8)  # reject the last three, then continue on a different path
    after = lm.extend([99, 98], keep=2)
    assert torch.allclose(after, reference_logits(model, IDS[:8] + [99, 98])[-2:], atol=1e-4)
    assert lm.length == 10


def test_the_cache_grows_past_its_first_allocation(tiny_verifier):
    model = tiny_verifier.model
    lm = open_cached_lm(model, tiny_verifier.vocab_size, tiny_verifier.device)
    ids = [(7 * i) % 300 + 3 for i in range(fast_llama._CHUNK + 10)][:250]  # the tiny model's window is 256
    lm.extend(ids[:200])
    tail = lm.extend(ids[200:], keep=50)
    assert lm.cache.capacity >= 250
    assert torch.allclose(tail, reference_logits(model, ids)[200:], atol=1e-4)


def test_early_exit_view_runs_on_the_lean_forward(tiny_verifier):
    view = early_exit_view(tiny_verifier.model, 2)
    lm = open_cached_lm(view, tiny_verifier.vocab_size, tiny_verifier.device)
    assert isinstance(lm, fast_llama.FastLlamaLM) and len(lm.layers) == 2
    assert torch.allclose(lm.extend(IDS, keep=len(IDS)), reference_logits(view, IDS), atol=1e-4)


def test_forward_transformers_keeps_the_models_own_forward(tiny_verifier):
    session = make_session(tiny_verifier, "same", forward="transformers")
    assert isinstance(session.verifier_lm, CachedLM) and isinstance(session.drafter.lm, CachedLM)
    session = make_session(tiny_verifier, "same")
    assert isinstance(session.verifier_lm, fast_llama.FastLlamaLM)


@pytest.mark.parametrize(
    "change",
    [
        {"rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}},
        {"attention_bias": True},
        {"hidden_act": "gelu"},
        {"model_type": "mistral"},
    ],
)
def test_models_it_does_not_cover_fall_back_to_transformers(tiny_verifier, change):
    model = copy.copy(tiny_verifier.model)
    model.config = copy.deepcopy(tiny_verifier.model.config)
    for key, value in change.items():
        setattr(model.config, key, value)
    assert not fast_llama.supports(model)
    assert isinstance(open_cached_lm(model, tiny_verifier.vocab_size, tiny_verifier.device), CachedLM)


@pytest.mark.embedded
def test_embedded_model_logits_match_transformers(embedded):
    ids = embedded.tokenizer("def add(a, b):\n    return a + b\n")["input_ids"]
    lm = open_cached_lm(embedded.model, embedded.vocab_size, embedded.device)
    assert isinstance(lm, fast_llama.FastLlamaLM)
    reference = reference_logits(embedded.model, ids)
    assert torch.allclose(lm.extend(ids[:-4], keep=3), reference[-7:-4], atol=2e-3)
    block = lm.extend(ids[-4:], keep=4)
    assert torch.allclose(block, reference[-4:], atol=2e-3)
    assert block.argmax(-1).tolist() == reference[-4:].argmax(-1).tolist()
