"""The verifier row: its token at each of the k + 1 positions, with p of its choice and p of the drafted token."""

from __future__ import annotations

from textual.content import Content

from engine import Decision

from .chip_row import ChipRow
from ..chips import OUT_OF_PLAY, column_width, probability, row, visible
from ..narration import num


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
            # After the first mismatch the verifier predicted from a rejected draft: out of play.
            style = OUT_OF_PLAY if p.decision is Decision.NOT_REACHED else "$text-muted" if p.decision is Decision.STOPPED else "bold $text"
            if p.decision is Decision.REJECTED:
                style = "bold $text on $warning-muted"
            tokens.append((visible(p.verifier_piece), style))
            dim = OUT_OF_PLAY if p.decision is Decision.NOT_REACHED else "$text-muted"
            p_own.append((probability(p.p_verifier), dim))
            # Sampling: p(draft) is the rule's p, shown with the digits that let p/q be recomputed.
            shown_p = num if result.verify_mode == "sampling" else probability
            no_draft = "plain" if p.decision is Decision.PLAIN else "bonus"  # a step with no drafts: no bonus either
            p_draft.append((shown_p(p.p_verifier_of_draft) if p.draft_id is not None else no_draft, dim))
        self.update(
            Content("\n").join([
                row(label, tokens, width),
                row("p", p_own, width),
                row("p(draft)", p_draft, width),
            ])
        )
