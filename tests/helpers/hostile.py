"""Hostile strings and a trace full of them (shared by the text-safety tests)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from engine.records.safe_text import json_line

DATA = Path(__file__).parent.parent / "data"

# Markup that crashes (closing tags), markup that would be interpreted, terminal control, NUL, a lone surrogate.
HOSTILE = ["[/i]", "[red]RED[/red]", "[/]", "\x1b]0;PWNED\x07", "\x1b[2J", "a\x00b", "\ud800", "🦀 emoji", "[b]bold[/b]",
           "\x9b31m", "\u202eevil"]
RAW_CONTROL = ["\x1b", "\x07", "\x00", "\ud800", "\x9b", "\u202e"]


def hostile_trace(target: Path, source: Path = DATA / "greedy.jsonl") -> Path:
    """The recorded greedy trace with every text field (prompt, pieces, top-5, model name) made hostile."""
    pieces = itertools.cycle(HOSTILE)
    records = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    head = records[0]
    head["prompt"] = "".join(HOSTILE)
    head["prompt_pieces"] = list(HOSTILE)
    head["config"]["verifier"] = "[/b]\x1b]0;PWNED\x07"
    for record in records[1:]:
        if record.get("type") != "step":
            continue
        for position in record["positions"]:
            if position["draft_piece"] is not None:
                position["draft_piece"] = next(pieces)
            position["verifier_piece"] = next(pieces)
            for alternative in position["draft_top"] + position["verifier_top"]:
                alternative["piece"] = next(pieces)
        record["drafted_by"] = next(pieces)  # the draft row's title names it
        for token in record["emitted"]:
            token["piece"] = next(pieces)
        record["emitted_text"] = "".join(t["piece"] for t in record["emitted"])
    target.write_text("".join(json_line(r) + "\n" for r in records), encoding="utf-8")
    return target
