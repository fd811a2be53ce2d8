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


def step_summary(result: StepResult) -> str:
    """What was kept; at a rejection, where the block stops, what was taken there and that later columns are out.
    In sampling mode the correction is drawn from the leftover (it need not be among the verifier's likeliest)."""
    kept = f"kept {result.accepted}/{result.drafted} drafts"
    stop = next((p for p in result.positions if p.decision is Decision.REJECTED), None)
    if stop is None:
        extra = len(result.emitted) - result.accepted
        return f"{kept} + {extra} verifier token{'s' if extra != 1 else ''} -> {len(result.emitted)} new"
    if stop.draw is not None:
        share = f" ({probability(stop.residual_prob)})" if stop.residual_prob is not None else ""
        taken = f"{visible(stop.verifier_piece)} drawn from max(0, p−q){share}"
    else:
        taken = f"took {visible(stop.verifier_piece)}"
    later = any(p.decision is Decision.NOT_REACHED for p in result.positions[stop.index + 1:])
    return f"{kept} · ■ stops at {stop.index + 1}: {taken}" + (" · later predictions discarded" if later else "")


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
        self.update(Content("\n").join([row("decision", decisions, width), row(second, details, width),
                                        Content.styled(step_summary(result), "$text-muted")]))
