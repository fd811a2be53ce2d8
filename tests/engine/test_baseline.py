"""Plain decoding (engine/verification/baseline.py), the reference every speculative run is checked against, and
the comparison that says "identical" or where the outputs part."""

from dataclasses import replace

from engine import BaselineResult, SpecConfig, Stats
from engine.verification.baseline import compare, plain_decode
from conftest import make_session, plain_greedy


def prompt_ids(verifier, text: str) -> list[int]:
    session = make_session(verifier, "ngram")
    session.reset(text)
    return list(session.prompt_ids)


def test_plain_decoding_with_a_kv_cache_is_the_verifiers_greedy_output_recomputed_from_scratch(tiny_verifier):
    prompt = prompt_ids(tiny_verifier, "the cat sat on")
    config = SpecConfig(verifier=tiny_verifier.name)
    result = plain_decode(tiny_verifier, config, prompt, 24, tiny_verifier.vocab_size)
    assert list(result.token_ids[len(prompt):]) == plain_greedy(tiny_verifier, prompt, 24)
    assert result.new_tokens <= 24 and result.finish_reason in ("max_new_tokens", "eos")
    assert result.generated_text == tiny_verifier.tokenizer.decode(result.token_ids[len(prompt):], skip_special_tokens=True)


def test_sampled_plain_decoding_is_reproducible_from_its_seed(tiny_verifier):
    prompt = prompt_ids(tiny_verifier, "the dog")
    config = SpecConfig(verifier=tiny_verifier.name, verify="sampling", seed=11)
    first = plain_decode(tiny_verifier, config, prompt, 16, tiny_verifier.vocab_size)
    again = plain_decode(tiny_verifier, config, prompt, 16, tiny_verifier.vocab_size)
    other = plain_decode(tiny_verifier, config.replace(seed=12), prompt, 16, tiny_verifier.vocab_size)
    assert first.token_ids == again.token_ids and other.token_ids != first.token_ids


def test_the_comparison_names_the_first_difference_and_the_speed_ratio():
    baseline = BaselineResult(token_ids=(1, 2, 3, 4, 5, 6), text="", generated_text="", new_tokens=4, wall_s=2.0,
                              finish_reason="max_new_tokens")
    stats = replace(Stats(), new_tokens=4, wall_s=1.0)
    same = compare([3, 4, 5, 6], 2, stats, baseline)
    assert same.lossless and same.first_difference is None and same.compared_tokens == 4 and same.speedup == 2.0
    differs = compare([3, 4, 9, 6], 2, stats, baseline)
    assert not differs.lossless and differs.first_difference == 2
    shorter = compare([3, 4], 2, stats, baseline)
    assert shorter.lossless and shorter.compared_tokens == 2  # a run stopped early is compared over what it made
