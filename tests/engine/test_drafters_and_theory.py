"""Prompt-lookup drafting, the adaptive block-size schedule, and the speed-up formulas."""

import pytest

from engine.drafting.drafters import NgramDrafter
from engine.planning.schedule import next_block_size
from engine.records.theory import best_k, expected_speedup, expected_tokens_per_step
from conftest import make_session, plain_greedy


def test_ngram_copies_what_followed_the_most_recent_match():
    drafter = NgramDrafter(vocab_size=100, max_n=3)
    #          0  1  2  3  4  5  6  7  8  9
    context = [5, 6, 7, 1, 2, 5, 6, 7, 3, 4, 5, 6, 7]
    assert drafter.lookup(context, 2) == [3, 4]  # the later occurrence wins


def test_ngram_falls_back_to_shorter_suffixes():
    drafter = NgramDrafter(vocab_size=100, max_n=3)
    assert drafter.lookup([9, 1, 2, 8, 7, 2], 3) == [8, 7, 2]  # only the 1-gram [2] matches


def test_ngram_overlapping_repeat_continues_into_itself():
    drafter = NgramDrafter(vocab_size=100, max_n=2)
    assert drafter.lookup([1, 2, 1, 2, 1], 5) == [2, 1, 2, 1, 2]


def test_ngram_with_a_minimum_match_ignores_shorter_ones():
    drafter = NgramDrafter(vocab_size=50, max_n=3, min_n=2)
    assert drafter.lookup([1, 2, 3, 4, 2], 2) == []  # only a 1-token match
    assert drafter.lookup([1, 2, 3, 1, 2], 2) == [3, 1]


def test_ngram_proposes_nothing_without_a_match():
    drafter = NgramDrafter(vocab_size=100, max_n=3)
    assert drafter.lookup([1, 2, 3, 4], 4) == []
    assert drafter.lookup([7], 4) == []


def test_ngram_greedy_is_lossless_and_drafts_on_repetitive_text(tiny_verifier):
    session = make_session(tiny_verifier, "ngram", block_size=5, max_new_tokens=40)
    session.reset("def add(a, b):\n    return a + b\n\nprint(add(1, 2))\ndef add(a, b):\n")
    session.run()
    assert session.new_token_ids == plain_greedy(tiny_verifier, session.prompt_ids, 40)
    assert session.stats.drafted > 0


def test_heuristic_schedule_follows_the_rule():
    k = 4
    history = []
    for drafted, accepted in [(4, 4), (6, 6), (8, 3), (7, 0), (6, 0), (5, 5)]:
        k = next_block_size(k, drafted, accepted)
        history.append(k)
    assert history == [6, 8, 7, 6, 5, 7]
    assert next_block_size(1, 1, 0) == 1  # never below 1
    assert next_block_size(16, 16, 16) == 16  # never above the maximum


def test_session_uses_the_heuristic_schedule(tiny_verifier):
    session = make_session(tiny_verifier, "same", block_size=2, draft_mode="greedy", block_size_schedule="heuristic",
                           max_new_tokens=30)
    session.reset("In a distant future,")
    session.run()
    sizes = [r.block_size for r in session.steps]
    assert sizes[:3] == [2, 4, 6]  # same model, greedy: everything accepted, k grows by 2


@pytest.mark.parametrize("a, k, expected", [(0.0, 4, 1.0), (1.0, 4, 5.0), (0.5, 1, 1.5), (0.5, 3, 1.875)])
def test_expected_tokens_per_step(a, k, expected):
    assert expected_tokens_per_step(a, k) == pytest.approx(expected)


def test_expected_speedup_and_best_k():
    assert expected_speedup(0.5, 3, 0.0) == pytest.approx(1.875)
    assert expected_speedup(0.8, 4, 0.1) == pytest.approx((1 - 0.8**5) / (0.2 * 1.4))
    assert expected_speedup(0.0, 4, 0.5) == pytest.approx(1 / 3)
    assert best_k(0.0, 0.1) == 0  # nothing is accepted: drafting never pays
    assert best_k(1.0, 0.0) == 16  # free, perfect drafts: the largest block
    assert best_k(0.8, 1.0) == 0  # a drafter as slow as the verifier never pays
    assert best_k(0.8, 0.05) == max(range(1, 17), key=lambda k: expected_speedup(0.8, k, 0.05))
