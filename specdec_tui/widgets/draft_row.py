"""The draft block: the k drafted tokens as chips, each with the drafter's q."""

from __future__ import annotations

from textual.content import Content

from engine import Decision, shown

from .chip_row import ChipRow
from ..chips import DECISION_STYLE, OUT_OF_PLAY, column_width, drafter_probability, probability, row, visible
from ..narration import chain_rule, num


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
            (visible(p.draft_piece), DECISION_STYLE[p.decision][1] if p.decision is not Decision.NOT_REACHED else OUT_OF_PLAY)
            for p in drafts
        ]
        # Sampling verification: the q the rule used (a greedy draft is a point mass, q = 1, whatever the softmax
        # said), so p(draft) / q on screen gives the u-threshold shown below. Greedy verification uses no q: the
        # drafter's softmax is shown for information.
        sampling = result.verify_mode == "sampling"
        rules = [chain_rule(result, p) if sampling else None for p in drafts]
        # A chain's q_drafter is the q its draft was drawn with, tested or not (drafts after the stop were not).
        q = [(num(rule.q) if rule else num(p.q_drafter) if sampling and result.tree is None and p.q_drafter is not None
              else probability(drafter_probability(p)), "$text-muted") for p, rule in zip(drafts, rules)]
        why = next((rule.q_why for rule in rules if rule and rule.q_why and rule.p_why is None), None)
        label = "q (rule)" if sampling else "q"
        if why and not by:
            self.border_title = f"Draft block (drafter proposes) · {why} for the rule"
        elif why:
            self.border_title = Content(shown(f"Draft block ({BY.get(by, by)}) · {why}", keep=""))
        self.update(Content("\n").join([row("draft", tokens, width), row(label, q, width)]))
