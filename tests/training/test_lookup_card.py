"""training/lookup_card.py counts what auto will read, and the shipped card says where it came from."""

import json

from engine.drafting.drafters import NgramDrafter
from engine.drafting.lookup_card import CARD
from training.lookup_card import DRAFTERS, count_text


def test_drafts_are_counted_by_depth_until_the_first_refused_one():
    # prompt "a b c a b" then the text "c a b d": after "a b" lookup copies "c a b c a b ..." (the overlapping copy)
    a, b, c, d = 1, 2, 3, 4
    ids, start = [a, b, c, a, b, c, a, b, d], 5
    reached, kept = [0] * 8, [0] * 8
    fired = count_text(ids, start, NgramDrafter(10, max_n=3, min_n=2), False, reached, kept)
    # t=5: drafts c a b c.. vs c a b d: 3 kept, the 4th refused; t=6: a b c vs a b d; t=7: b c vs b d; t=8: c vs d
    assert fired == 4
    assert reached[:4] == [4, 3, 2, 1] and kept[:4] == [3, 2, 1, 0]


def test_plain_ngram_counts_a_position_without_a_match_as_a_miss_at_depth_one():
    ids, start = [1, 2, 3, 4], 2  # no token repeats: lookup never has a continuation
    for no_match_is_miss, expected in ((True, 2), (False, 0)):
        reached, kept = [0] * 8, [0] * 8
        assert count_text(ids, start, NgramDrafter(10, max_n=3, min_n=1), no_match_is_miss, reached, kept) == 0
        assert reached[0] == expected and sum(kept) == 0


def test_the_shipped_card_covers_each_drafter_and_names_its_texts():
    card = json.loads(CARD.read_text())
    assert set(card["drafters"]) == set(DRAFTERS) and card["made_by"] == "training/lookup_card.py"
    from training.prompts import grounded_prompts, held_out_prompts

    assert card["texts"] == {"open-ended (held-out)": len(held_out_prompts()), "grounded": len(grounded_prompts())}
    for row in card["drafters"].values():
        assert all(0 < share <= 1 for share in row["conditional_acceptance"])
