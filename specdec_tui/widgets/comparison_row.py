"""Per position: ACCEPT / MISMATCH (with the correction) / BONUS / not reached; in sampling, min(1, p/q) and the draw."""

from __future__ import annotations

from textual.content import Content

from engine import Decision

from .chip_row import ChipRow
from ..chips import DECISION_STYLE, column_width, decision_word, probability, row, visible


class ComparisonRow(ChipRow):
    TITLE = "Comparison (longest agreeing prefix is kept)"

    def refresh_content(self) -> None:
        result = self.result
        if result is None:
            self.update(Content.styled("decisions appear here", "$text-muted"))
            return
        if not result.drafted:  # an n-gram miss: nothing to compare, the verifier decoded one token itself
            self.update(Content.styled(
                f"no drafts this step: the verifier produced “{visible(result.emitted_text)}” on its own (a plain decoding step)",
                "$text-muted",
            ))
            return
        width = column_width(self.content_size.width or 80, len(result.positions))
        decisions, details = [], []
        for p in result.positions:
            style = DECISION_STYLE[p.decision][1] + (" reverse" if p.index == self.selected else "")
            decisions.append((decision_word(p.decision, width), style))
            if p.accept_prob is not None:
                verdict = "<" if p.draw < p.accept_prob else "≥"
                text = f"u={p.draw:.2f}{verdict}{probability(p.accept_prob)}"
                details.append((text if len(text) < width else f"{p.draw:.2f}{verdict}", "$text-muted"))
            elif p.decision is Decision.REJECTED:
                details.append((f"→{visible(p.verifier_piece)}", "bold $text-warning"))
            else:
                details.append(("", ""))
        second = "u vs p/q" if result.verify_mode == "sampling" else "taken"
        summary = Content.styled(
            f"kept {result.accepted}/{result.drafted} drafts + "
            f"{len(result.emitted) - result.accepted} verifier token(s) -> {len(result.emitted)} new",
            "$text-muted",
        )
        self.update(Content("\n").join([row("decision", decisions, width), row(second, details, width), summary]))
