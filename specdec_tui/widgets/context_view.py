"""The accepted context: every token coloured by where it came from, the newest step highlighted."""

from __future__ import annotations

import re

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from engine import Source, StepResult
from engine import shown

from ..chips import SOURCE_STYLE

# A control token the model emitted (end of turn, end of text): one piece that is a whole marker. The same text typed
# in a prompt is encoded as several plain pieces, so it never matches, and keeps the prompt's style.
CONTROL = re.compile(r"<\|[^|<>]{1,40}\|>|</?s>|<(?:eos|bos|pad|unk)>")
CONTROL_STYLE = "italic bold $text-error"

LEGEND = Content.assemble(
    ("prompt", SOURCE_STYLE[Source.PROMPT]), "  ",
    ("draft", SOURCE_STYLE[Source.DRAFT]), "  ",
    ("correction", SOURCE_STYLE[Source.CORRECTION]), "  ",
    ("bonus", SOURCE_STYLE[Source.BONUS]), "  ",
    ("plain", SOURCE_STYLE[Source.PLAIN]), "  ",
    ("control token", CONTROL_STYLE), "  ",
    ("newest step", "reverse"),
)


def _text(piece: str) -> str:
    """A piece as flowing text: newlines kept, tabs as ⇥ (a raw tab would shift the cells), controls made visible."""
    return shown(piece.replace("\t", "⇥"))


class ContextView(VerticalScroll):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.border_title = "Accepted context"

    def compose(self):
        yield Static(LEGEND, id="context-legend")
        yield Static("", id="context-text")

    def show(self, prompt_pieces: tuple[str, ...], steps: tuple[StepResult, ...], finished: str | None) -> None:
        parts: list = [(_text(piece), SOURCE_STYLE[Source.PROMPT]) for piece in prompt_pieces]
        for result in steps:
            newest = result is steps[-1]
            for token in result.emitted:
                piece = _text(token.piece)
                control = CONTROL.fullmatch(token.piece.strip()) is not None
                style = (CONTROL_STYLE if control else SOURCE_STYLE[token.source]) + (" reverse" if newest else "")
                parts.append((piece, style))
        if finished:
            parts.append((f"  ■ finished: {shown(finished.replace('_', ' '), keep='')}", "italic $text-muted"))
        self.query_one("#context-text", Static).update(Content.assemble(*parts))
        self.scroll_end(animate=False)
