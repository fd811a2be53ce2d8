"""The verifier row: its token at each of the k + 1 positions, with p of its choice and p of the drafted token."""

from __future__ import annotations

from textual.content import Content

from engine import Decision

from .chip_row import ChipRow
from ..chips import column_width, probability, row, visible


class VerifierRow(ChipRow):
    TITLE = "Verifier row (one forward pass)"

    def refresh_content(self) -> None:
        result = self.result
        if result is None:
            self.update(Content.styled("the verifier's k + 1 predictions appear here", "$text-muted"))
            return
        width = column_width(self.content_size.width or 80, len(result.positions))
        label = "greedy" if result.verify_mode == "greedy" else "sample"
        tokens, p_own, p_draft = [], [], []
        for p in result.positions:
            style = "$text-muted" if p.decision in (Decision.NOT_REACHED, Decision.STOPPED) else "bold $text"
            if p.decision is Decision.REJECTED:
                style = "bold $text on $warning-muted"
            tokens.append((visible(p.verifier_piece), style))
            p_own.append((probability(p.p_verifier), "$text-muted"))
            p_draft.append((probability(p.p_verifier_of_draft) if p.draft_id is not None else "bonus", "$text-muted"))
        self.update(
            Content("\n").join([
                row(label, tokens, width),
                row("p", p_own, width),
                row("p(draft)", p_draft, width),
            ])
        )
