"""The accepted context: every token coloured by where it came from, the newest step highlighted."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from engine import Source, StepResult
from engine import shown

from ..chips import SOURCE_STYLE

LEGEND = Content.assemble(
    ("prompt", SOURCE_STYLE[Source.PROMPT]), "  ",
    ("draft", SOURCE_STYLE[Source.DRAFT]), "  ",
    ("correction", SOURCE_STYLE[Source.CORRECTION]), "  ",
    ("bonus", SOURCE_STYLE[Source.BONUS]), "  ",
    ("plain (no drafts)", SOURCE_STYLE[Source.PLAIN]), "  ",
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
                style = SOURCE_STYLE[token.source] + (" reverse" if newest else "")
                parts.append((piece, style))
        if finished:
            parts.append((f"  ■ finished: {shown(finished.replace('_', ' '), keep='')}", "italic $text-muted"))
        self.query_one("#context-text", Static).update(Content.assemble(*parts))
        self.scroll_end(animate=False)
