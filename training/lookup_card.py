"""Prompt lookup's card: of its copied drafts at each depth the verifier reached, the share it kept, measured on texts
that are no bench prompt.

    .venv/bin/python training/lookup_card.py    # about 3 minutes on 2 cores; writes engine/drafting/lookup_card.json

`-k auto` starts each drafter's estimates from what is known before the run (engine/planning/auto_plan.py): the
draft head from its card's held-out acceptance, lookup from this card. Without one, lookup started at the planner's
generic 0.4 and flat below, where on the bench's texts it kept 0.88-0.97 of its drafts: auto needed several blocks
to believe it, and on a short grounded text those are most of the run. The texts: the draft head's held-out
open-ended prompts and the grounded requests of training/prompts.py (a passage to repeat, code to edit), greedy,
64 tokens, with the shipped verifier. Lookup needs no model, so at every position of each text it is asked for 8
drafts (as for a step there) and compared with the verifier's next 8 tokens. Greedy text is the same on every CPU,
so the card is too (up to fp32 near-ties).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.drafting.drafters import LookupHeadDrafter, NgramDrafter  # noqa: E402
from engine.drafting.lookup_card import CARD  # noqa: E402

DEPTH = 8  # the deepest chain auto runs
MAX_NEW_TOKENS = 64


# Which lookup each drafter runs, and whether a position where it finds no match counts: plain `ngram` then drafts
# nothing, which auto counts as a miss at depth 1; in `ngram+head` the head drafts there instead.
DRAFTERS = {"ngram": (1, True), "ngram+head": (LookupHeadDrafter.MIN_MATCH, False)}


def count_text(ids: list[int], start: int, lookup: NgramDrafter, no_match_is_miss: bool,
               reached: list[int], kept: list[int]) -> int:
    """Add one text's drafts to the counts (`ids`: prompt then greedy text from `start`); return the positions where
    lookup had a continuation."""
    fired = 0
    for t in range(start, len(ids)):
        drafts, truth = lookup.lookup(ids[:t], DEPTH), ids[t:t + DEPTH]
        fired += bool(drafts)
        if not drafts and no_match_is_miss:
            reached[0] += 1
        for depth, (drafted, token) in enumerate(zip(drafts, truth)):
            reached[depth] += 1
            if drafted != token:
                break
            kept[depth] += 1
    return fired


def measure(prompts: dict[str, list[tuple[str, bool]]], verifier) -> dict:
    from engine import Session, SpecConfig

    sets = {}
    for set_name, texts in prompts.items():
        rows = {}
        for drafter in DRAFTERS:
            rows[drafter] = {"reached": [0] * DEPTH, "kept": [0] * DEPTH, "fired": 0, "positions": 0}
        for text, chat in texts:
            config = SpecConfig(verifier=verifier.name, drafter="ngram", chat=chat, max_new_tokens=MAX_NEW_TOKENS)
            session = Session.from_loaded(config, verifier)
            session.reset(text)
            ids, start = list(session.baseline().token_ids), len(session.prompt_ids)
            for drafter, row in rows.items():
                min_n, no_match_is_miss = DRAFTERS[drafter]
                lookup = NgramDrafter(verifier.vocab_size, config.ngram_max, min_n=min_n)
                row["fired"] += count_text(ids, start, lookup, no_match_is_miss, row["reached"], row["kept"])
                row["positions"] += len(ids) - start
        sets[set_name] = rows
        print(f"measured {set_name}: {len(texts)} texts", flush=True)
    return sets


def kept_share(row: dict) -> list[float]:
    """Conditional acceptance by depth, up to the first depth reached fewer than 20 times (too few to say)."""
    return [round(k / r, 3) for k, r in zip(row["kept"], row["reached"]) if r >= 20]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(CARD))
    parser.add_argument("--limit", type=int, default=0, help="texts per set (0: all)")
    args = parser.parse_args()

    from engine import load_model
    from training.prompts import for_engine, grounded_prompts, held_out_prompts

    started = time.time()
    verifier = load_model("smollm2-135m")
    prompts = {"open-ended (held-out)": [for_engine(p) for p in held_out_prompts()],
               "grounded": [for_engine(p) for p in grounded_prompts()]}
    if args.limit:
        prompts = {name: texts[: args.limit] for name, texts in prompts.items()}
    sets = measure(prompts, verifier)
    by_drafter = {}
    for drafter, (min_n, no_match_is_miss) in DRAFTERS.items():
        pooled = {key: [sum(s[drafter][key][d] for s in sets.values()) for d in range(DEPTH)]
                  for key in ("reached", "kept")}
        by_drafter[drafter] = {
            "min_match": min_n, "no_match_is_a_miss": no_match_is_miss,
            "conditional_acceptance": kept_share(pooled),
            "by_set": {name: {"conditional_acceptance": kept_share(s[drafter]), "drafted_at": s[drafter]["fired"],
                              "positions": s[drafter]["positions"], "reached": s[drafter]["reached"]}
                       for name, s in sets.items()},
        }
    card = {
        "what": "prompt lookup's kept share of its drafts at each depth the verifier reached (depth 1 first), "
                "greedy, for each drafter that runs it (ngram copies from 1-token suffix matches and drafts nothing "
                "without one, a miss at depth 1; ngram+head's lookup needs 2 tokens and drafts only where it has one)",
        "verifier": verifier.name, "max_new_tokens": MAX_NEW_TOKENS,
        "texts": {name: len(texts) for name, texts in prompts.items()},
        "made_by": "training/lookup_card.py", "date": time.strftime("%Y-%m-%d"),
        "drafters": by_drafter,
    }
    Path(args.out).write_text(json.dumps(card, indent=1) + "\n")
    for drafter, row in by_drafter.items():
        print(f"{drafter}'s lookup: kept by depth {row['conditional_acceptance']}")
        for name, s in row["by_set"].items():
            print(f"  {name}: {s['conditional_acceptance']} (drafted at {s['drafted_at']} of {s['positions']})")
    print(f"wrote {args.out} in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
