"""Prompt lookup's card (lookup_card.json, measured by training/lookup_card.py): how often the verifier keeps its
copied drafts, by depth. `-k auto` starts lookup's estimates there, as it starts the draft head's at the head's card.

Lookup's hit rate is mostly the text's (how much it repeats), little the model's: the card measured with the
shipped verifier is the prior for any verifier, and a run's own steps outweigh it after a few blocks
(auto_plan.PRIOR_WEIGHT).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

CARD = Path(__file__).with_name("lookup_card.json")


@lru_cache(maxsize=None)
def lookup_prior(drafter: str) -> tuple[float, ...]:
    """Conditional acceptance by depth of the lookup `drafter` runs (`ngram`, or `ngram+head`'s, which needs a longer
    match); () without a card (a checkout that lost it: the planner's generic prior then)."""
    try:
        card = json.loads(CARD.read_text())
        row = card["drafters"][drafter]["conditional_acceptance"]
    except (OSError, ValueError, KeyError):
        return ()
    return tuple(float(share) for share in row if 0 < share <= 1)
