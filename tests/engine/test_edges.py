"""End of text inside a block, k = 1, one-token prompts, bad prompts (bad settings: test_config.py)."""

import pytest

from engine import Decision, EngineError, PromptError
from conftest import make_session, plain_greedy


def test_max_new_tokens_inside_a_block(tiny_verifier):
    session = make_session(tiny_verifier, "same", block_size=4, draft_mode="greedy", max_new_tokens=7)
    session.reset("In a distant future,")
    results = session.run()
    assert len(session.new_token_ids) == 7
    assert session.finish_reason == "max_new_tokens"
    # Step 1 emits 5 (4 accepted + bonus); step 2 may draft only 2 and is cut after 2 tokens.
    assert [len(r.emitted) for r in results] == [5, 2]
    assert results[-1].finish_reason == "max_new_tokens"
    assert results[-1].drafted == 2


def test_eos_inside_a_block_stops_at_the_right_token(tiny_verifier):
    session = make_session(tiny_verifier, "same", block_size=6, draft_mode="greedy", max_new_tokens=30)
    session.reset("In a distant future,")
    reference = plain_greedy(tiny_verifier, session.prompt_ids, 30)
    fake_eos = reference[2]  # pretend the 3rd generated token ends the text
    first = reference.index(fake_eos)
    generation = tiny_verifier.model.generation_config
    old = generation.eos_token_id
    generation.eos_token_id = fake_eos
    try:
        session.reset("In a distant future,")
        results = session.run()
    finally:
        generation.eos_token_id = old
    assert session.finish_reason == "eos"
    assert session.new_token_ids == reference[: first + 1]
    assert len(results) == 1
    assert [p.decision for p in results[0].positions][first + 1 :] == [Decision.STOPPED] * (6 - first)


def test_block_size_one(tiny_verifier):
    session = make_session(tiny_verifier, "same", block_size=1, max_new_tokens=10)
    session.reset("In a distant future,")
    session.run()
    assert session.new_token_ids == plain_greedy(tiny_verifier, session.prompt_ids, 10)
    assert all(r.drafted == 1 and len(r.positions) == 2 for r in session.steps)


def test_one_token_prompt(tiny_verifier):
    session = make_session(tiny_verifier, "same", block_size=3, max_new_tokens=10)
    session.reset("a")
    assert len(session.prompt_ids) == 1
    session.run()
    assert session.new_token_ids == plain_greedy(tiny_verifier, session.prompt_ids, 10)


@pytest.mark.parametrize("prompt, words", [("", "empty"), ("   \n\t", "whitespace")])
def test_empty_prompts_are_refused_and_state_kept(tiny_verifier, prompt, words):
    session = make_session(tiny_verifier, "same", max_new_tokens=10)
    session.reset("In a distant future,")
    session.step()
    before = list(session.tokens)
    with pytest.raises(PromptError, match=words):
        session.reset(prompt)
    assert session.tokens == before


def test_over_long_prompt_is_refused_with_the_window(tiny_verifier):
    session = make_session(tiny_verifier, "same")
    with pytest.raises(PromptError, match="context window is 256"):
        session.reset("the future " * 400)


def test_context_window_stops_decoding(tiny_verifier):
    session = make_session(tiny_verifier, "same", block_size=8, max_new_tokens=1000)
    session.reset("the future " * 100)
    session.run()
    assert session.finish_reason in ("context_window", "eos")
    assert len(session.tokens) <= 256


def test_step_after_finish_says_so(tiny_verifier):
    session = make_session(tiny_verifier, "same", max_new_tokens=2)
    session.reset("a")
    session.run()
    with pytest.raises(EngineError, match="finished"):
        session.step()


def test_baseline_does_not_disturb_the_session(tiny_verifier):
    session = make_session(tiny_verifier, "same", block_size=3, max_new_tokens=20)
    session.reset("In a distant future,")
    session.step()
    tokens, stats = list(session.tokens), session.stats
    baseline = session.baseline()
    assert session.tokens == tokens and session.stats == stats
    session.run()
    comparison = session.compare(baseline)
    assert comparison.lossless and comparison.compared_tokens == 20
    assert baseline.new_tokens == 20 and baseline.tokens_per_s > 0


@pytest.mark.parametrize("drafter", ["same", "ngram", "head"])
@pytest.mark.parametrize("verify", ["greedy", "sampling"])
def test_speed_check_times_the_whole_run_and_puts_the_live_run_back(tiny_verifier, tiny_head, drafter, verify):
    """`b` in the app: the check decodes the prompt again in a tight loop; stepping then goes on as if it never ran."""
    spec = f"head:{tiny_head[0]}" if drafter == "head" else drafter
    config = dict(block_size=3, max_new_tokens=20, verify=verify, draft_mode="sampled", seed=7)
    checked, untouched = make_session(tiny_verifier, spec, **config), make_session(tiny_verifier, spec, **config)
    for session in (checked, untouched):
        session.reset("In a distant future,")
        session.step()
        session.step()
    tokens, steps, stats = list(checked.tokens), list(checked.steps), checked.stats
    check = checked.speed_check()
    assert checked.tokens == tokens and checked.steps == steps and checked.stats == stats
    assert check.speculative_tokens_per_s > 0 and check.speedup > 0
    if verify == "greedy":  # the tight run is the same text as the plain one
        assert list(check.speculative_token_ids) == list(check.plain.token_ids[len(checked.prompt_ids):])
        assert len(check.speculative_token_ids) == 20
    checked.run()
    untouched.run()
    assert checked.new_token_ids == untouched.new_token_ids  # caches and the sampling generator were put back


def test_emoji_and_cjk_pieces_are_never_mojibake(embedded):
    """Byte-level BPE splits emoji across tokens: pieces must join to the real text, with no U+FFFD."""
    from engine.records.pieces import PieceDecoder

    text = "Rocket 🚀 to 東京 and back 🌍!"
    ids = embedded.tokenizer(text, add_special_tokens=False).input_ids
    pieces = PieceDecoder(embedded.tokenizer).pieces([], ids)
    assert "".join(pieces) == text
    assert not any("\ufffd" in piece for piece in pieces)
    assert len(ids) > len(text.split())  # the emoji really are split into several tokens


test_emoji_and_cjk_pieces_are_never_mojibake = pytest.mark.embedded(test_emoji_and_cjk_pieces_are_never_mojibake)


@pytest.mark.embedded
@pytest.mark.parametrize("drafter", ["same", "ngram", "early-exit:20"])
def test_embedded_model_greedy_is_lossless(embedded, drafter):
    session = make_session(embedded, drafter, block_size=4, draft_mode="sampled", max_new_tokens=16)
    session.reset("In a distant future,")
    session.run()
    baseline = session.baseline()
    assert session.compare(baseline).lossless and len(session.new_token_ids) == 16
