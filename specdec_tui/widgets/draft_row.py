"""The draft block: the k drafted tokens as chips, each with the drafter's q."""

from __future__ import annotations

from textual.content import Content

from engine import Decision, shown

from .chip_row import ChipRow
from ..chips import DECISION_STYLE, column_width, drafter_probability, probability, row, visible


BY = {"lookup": "lookup: copied from earlier in the text", "head": "drafted by the head"}


class DraftRow(ChipRow):
    TITLE = "Draft block (drafter proposes)"

    def refresh_content(self) -> None:
        result = self.result
        by = result.drafted_by if result is not None else None
        # ngram+head: which part drafted. A trace's text is data: a Content title is never parsed as markup.
        self.border_title = Content(shown(f"Draft block ({BY.get(by, by)})", keep="")) if by else self.TITLE
        if result is None:
            self.update(Content.styled("press n to draft a block", "$text-muted"))
            return
        if not result.drafted:
            self.update(Content.styled("no draft this step (plain verifier step)", "$text-muted"))
            return
        drafts = result.positions[: result.drafted]
        width = column_width(self.content_size.width or 80, len(result.positions))
        tokens = [
            (visible(p.draft_piece), DECISION_STYLE[p.decision][1] if p.decision is not Decision.NOT_REACHED else "$text")
            for p in drafts
        ]
        q = [(probability(drafter_probability(p)), "$text-muted") for p in drafts]
        self.update(Content("\n").join([row("draft", tokens, width), row("q", q, width)]))
