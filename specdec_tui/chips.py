"""Token chips and fixed-width columns, so the draft, verifier and comparison rows line up position by position."""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size
from textual.content import Content

from engine import Decision, Source
from engine import shown

LABEL_WIDTH = 9

# Colour plus a word or symbol: the decision stays readable on light and dark themes and without colour.
DECISION_STYLE = {
    Decision.ACCEPTED: ("✓ ACCEPT", "bold $text on $success-muted"),
    Decision.REJECTED: ("✗ MISMATCH", "bold $text on $error-muted"),
    Decision.BONUS: ("+ BONUS", "bold $text on $accent-muted"),
    Decision.PLAIN: ("= PLAIN", "bold $text on $panel"),
    Decision.NOT_REACHED: ("· discarded", "strike $text-muted"),  # after the block stopped: out of play
    Decision.STOPPED: ("■ past end", "$text-muted"),
}

# Narrow columns (small terminals, large k) use these shorter words.
DECISION_SHORT = {
    Decision.ACCEPTED: "✓ ok",
    Decision.REJECTED: "✗ no",
    Decision.BONUS: "+ bon",
    Decision.PLAIN: "= pln",
    Decision.NOT_REACHED: "·",
    Decision.STOPPED: "■ end",
}

SOURCE_STYLE = {
    Source.PROMPT: "$text-muted",
    Source.DRAFT: "$text-success",
    Source.CORRECTION: "underline $text-warning",
    Source.BONUS: "bold $text-accent",
    Source.PLAIN: "$text",
}


def visible(piece: str | None) -> str:
    """Whitespace made visible, so ' the' and 'the' and a newline are told apart on a chip; controls shown as data."""
    if piece is None:
        return ""
    if piece == "":
        return "‹byte›"  # a token that only starts a multi-byte character
    return shown(piece.replace(" ", "·").replace("\n", "↵").replace("\t", "⇥").replace("\r", "␍"), keep="")


def fit(text: str, width: int) -> str:
    """Exactly `width` terminal cells (wide characters such as emoji count two), cut with an ellipsis."""
    if cell_len(text) > width:
        return set_cell_size(text, max(1, width - 1)) + "…"
    return set_cell_size(text, width)


def column_width(total_width: int, columns: int) -> int:
    """Widest cells that still fit every position on one line (down to 5 characters, then clipped)."""
    return max(5, min(16, (total_width - LABEL_WIDTH) // max(1, columns)))


# Sampling verification refuses a draft by a draw (u >= p/q), not by a mismatch.
SAMPLING_WORDS = {Decision.REJECTED: ("✗ REJECTED", "✗ rej")}


def decision_word(decision: Decision, width: int, verify_mode: str = "greedy") -> str:
    word, short = DECISION_STYLE[decision][0], DECISION_SHORT[decision]
    if verify_mode == "sampling" and decision in SAMPLING_WORDS:
        word, short = SAMPLING_WORDS[decision]
    return word if len(word) <= width - 1 else short


def row(label: str, cells: list[tuple[str, str]], width: int) -> Content:
    """One line: a label, then one fixed-width cell per position, each (text, style)."""
    parts: list[tuple[str, str] | str] = [(fit(label, LABEL_WIDTH), "$text-muted")]
    for text, style in cells:
        parts.append(" ")
        parts.append((fit(text, width - 1), style))
    return Content.assemble(*parts)


def probability(value: float | None) -> str:
    if value is None:
        return ""
    if value >= 0.995:
        return "1.00"
    if value < 0.005:
        return "<.01" if value > 0 else "0"  # fits the narrowest column, where "4e-03" was cut to "4e-…"
    return f"{value:.2f}"


# Chips after the first mismatch: out of play, so dimmed and struck through on every row.
OUT_OF_PLAY = "strike $text-muted"


def drafter_probability(position) -> float | None:
    """The drafter's probability of its drafted token, as its top-5 shows it (a greedy draft's q is a point mass)."""
    for alternative in position.draft_top:
        if alternative.token_id == position.draft_id:
            return alternative.prob
    return position.q_drafter


def column_at(x: int, total_width: int, columns: int) -> int | None:
    """Which position a click at content column `x` falls on, or None for the label."""
    width = column_width(total_width, columns)
    offset = x - LABEL_WIDTH
    if offset < 0:
        return None
    index = offset // width
    return index if index < columns else None
