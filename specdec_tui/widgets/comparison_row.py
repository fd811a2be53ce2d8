"""Per position: the decision, and why: the correction (greedy) or the draw u against min(1, p/q) (sampling)."""

from __future__ import annotations

from textual.content import Content

from engine import Decision, StepResult

from .chip_row import ChipRow
from ..chips import DECISION_STYLE, column_width, decision_word, probability, row, visible
from ..narration import chain_rule

TITLES = {
    "greedy": "Comparison (greedy: longest prefix matching the verifier is kept)",
    "sampling": "Comparison (sampling: draft x kept while u < min(1, p(x)/q(x)))",
}


def rejection_note(result: StepResult) -> str | None:
    """In sampling mode, where the correction came from (it need not be among the verifier's likeliest tokens)."""
    rejected = next((p for p in result.positions if p.decision is Decision.REJECTED and p.draw is not None), None)
    if rejected is None:
        return None
    note = f"rejected at {rejected.index + 1}: {visible(rejected.verifier_piece)} resampled from max(0, p−q), normalised"
    if rejected.residual_prob is not None:
        note += f" ({probability(rejected.residual_prob)})"
    return note


class ComparisonRow(ChipRow):
    TITLE = TITLES["greedy"]

    def refresh_content(self) -> None:
        result = self.result
        if result is None:
            self.update(Content.styled("decisions appear here", "$text-muted"))
            return
        self.border_title = TITLES.get(result.verify_mode, TITLES["greedy"])
        if not result.drafted:  # an n-gram miss: nothing to compare, the verifier decoded one token itself
            self.update(Content("\n").join([
                Content.styled("no drafts this step: a plain decoding step;", "$text-muted"),
                Content.styled(f"the verifier produced {visible(result.emitted_text)} on its own", "$text-muted"),
            ]))
            return
        width = column_width(self.content_size.width or 80, len(result.positions))
        decisions, details = [], []
        for p in result.positions:
            style = DECISION_STYLE[p.decision][1] + (" reverse" if p.index == self.selected else "")
            decisions.append((decision_word(p.decision, width, result.verify_mode), style))
            rule = chain_rule(result, p) if p.accept_prob is not None else None
            if rule is not None:  # digits enough that the shown u and min(1, p/q) compare as the rule did
                verdict = "<" if rule.kept else "≥"
                u = rule.shown_u()
                text = f"u={u}{verdict}{rule.shown_ratio_for_u()}"
                details.append((text if len(text) < width else f"{u}{verdict}", "$text-muted"))
            elif p.decision is Decision.REJECTED:
                details.append((f"→{visible(p.verifier_piece)}", "bold $text-warning"))
            else:
                details.append(("", ""))
        second = "u vs p/q" if result.verify_mode == "sampling" else "taken"
        summary = rejection_note(result) or (
            f"kept {result.accepted}/{result.drafted} drafts + "
            f"{len(result.emitted) - result.accepted} verifier token(s) -> {len(result.emitted)} new"
        )
        stop = next((p for p in result.positions if p.decision is Decision.REJECTED), None)
        if stop is not None:  # where the block stops, and why the columns after it are struck through
            later = any(p.decision is Decision.NOT_REACHED for p in result.positions[stop.index + 1:])
            summary += f" · block stops at {stop.index + 1}" + ("; verifier predictions after a rejected draft are "
                                                                 "discarded" if later else "")
        self.update(Content("\n").join([row("decision", decisions, width), row(second, details, width),
                                        Content.styled(summary, "$text-muted")]))
