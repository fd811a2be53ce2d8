"""Loading model specs, and refusing what cannot work with a message that says why."""

import pytest

from engine import ModelLoadError, Session, SpecConfig, TokenizerMismatchError
from engine.models.loading import load_model


def test_local_folder_loads(tiny):
    model = load_model(tiny["verifier"])
    assert model.vocab_size > 256 and model.context_window == 256


def test_unknown_name_is_a_clear_error():
    with pytest.raises(ModelLoadError, match="gpt-nonexistent") as info:
        load_model("gpt-nonexistent")
    assert "smollm2-135m" in str(info.value)  # says what *is* available


def test_hub_id_offline_says_it_needs_network_or_a_local_copy(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="local"):
        load_model("distilgpt2")


def test_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(str(tmp_path))


def test_missing_gguf_file():
    with pytest.raises(ModelLoadError, match="no such .gguf file"):
        load_model("/nowhere/model.gguf")


def test_mismatched_tokenizers_name_both_models(tiny):
    config = SpecConfig(verifier=tiny["verifier"], drafter=tiny["foreign"])
    with pytest.raises(TokenizerMismatchError) as info:
        Session.from_config(config)
    assert tiny["verifier"] in str(info.value) and tiny["foreign"] in str(info.value)


def test_padded_vocab_with_same_tokenizer_is_accepted(tiny):
    session = Session.from_config(SpecConfig(verifier=tiny["verifier"], drafter=tiny["padded"], max_new_tokens=8))
    session.reset("In a distant future,")
    session.run()
    assert session.vocab == session.verifier.vocab_size  # the common part
    assert len(session.new_token_ids) == 8


def test_early_exit_needs_a_valid_layer_count(tiny):
    from engine import ConfigError

    with pytest.raises(ConfigError, match="1 <= N < 4"):
        Session.from_config(SpecConfig(verifier=tiny["verifier"], drafter="early-exit:9"))


def test_gguf_cache_round_trip(tmp_path, monkeypatch, embedded):
    """The embedded GGUF loads, and its dequantized cache (loaded both ways) reproduces the same logits."""
    import torch

    from engine.models.loading import _gguf_cache_dir, embedded_gguf

    cached = _gguf_cache_dir(embedded_gguf("smollm2-135m"))
    assert (cached / "model.safetensors").exists()
    again = load_model("smollm2-135m", lean=False)  # through transformers; `embedded` may be either
    ids = torch.tensor([embedded.tokenizer("In a distant future,").input_ids])
    with torch.inference_mode():
        ours, theirs = embedded.model(input_ids=ids).logits, again.model(input_ids=ids).logits
    # The lean forward multiplies in another order (W @ x.T): equal to float rounding, same predictions.
    assert torch.allclose(ours, theirs, atol=1e-3)
    assert torch.equal(ours.argmax(-1), theirs.argmax(-1))


test_gguf_cache_round_trip = pytest.mark.embedded(test_gguf_cache_round_trip)


def test_a_model_that_is_not_a_causal_lm(tmp_path):
    from transformers import DistilBertConfig

    DistilBertConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2, hidden_dim=32).save_pretrained(str(tmp_path))
    with pytest.raises(ModelLoadError, match="distilbert model, not a causal language model"):
        load_model(str(tmp_path))


def test_a_gguf_file_transformers_cannot_load(tmp_path):
    fake = tmp_path / "broken.gguf"
    fake.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="broken.gguf"):
        load_model(str(fake))


def test_remote_code_stays_off_by_default():
    from engine import SpecConfig

    assert SpecConfig().trust_remote_code is False


def test_switching_drafters_keeps_the_verifier_and_stays_lossless(tiny):
    from conftest import plain_greedy

    session = Session.from_config(SpecConfig(verifier=tiny["verifier"], drafter=tiny["padded"], max_new_tokens=12))
    session.reset("In a distant future,")
    verifier = session.verifier
    for spec in ("ngram", "early-exit", tiny["drafter"]):
        session.switch_drafter(spec)
        assert session.verifier is verifier and session.config.drafter == spec and session.stats.steps == 0
        session.run()
        assert session.new_token_ids == plain_greedy(verifier, session.prompt_ids, 12)
    assert len(session.drafter.lm.model.model.layers) == 1  # the separately loaded 1-layer drafter
