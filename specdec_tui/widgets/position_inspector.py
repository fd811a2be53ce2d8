"""A closer look at one position: why it was decided so, in one sentence, then the drafter's and the verifier's
top-5 side by side (left/right to move). The drafted and the chosen token are always listed, even outside a top-5."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from engine import Alternative, Decision, Position, StepResult, TreeNode

from ..chips import decision_word, fit, visible
from ..narration import chain_rule, node_rule, num, quote, rule_sentence

MARKS = "▸ the verifier's pick   • the draft"


def _column(alternatives: tuple[Alternative, ...], width: int, pick: int | None, draft: int | None,
            extra: tuple[Alternative | None, ...] = ()) -> list[Content]:
    """Top-5 rows, the pick marked ▸ and the draft •; a marked token outside the top-5 is added below it."""
    listed = {alt.token_id for alt in alternatives}
    for alt in extra:
        if alt is not None and alt.token_id not in listed:
            alternatives = (*alternatives, alt)
            listed.add(alt.token_id)
    cells = []
    for alt in alternatives:
        marked = alt.token_id in (pick, draft)
        if alt.prob <= 0 and not marked:
            continue  # filtered out by top-k / top-p: padding, not an alternative
        mark = "▸" if alt.token_id == pick else "•" if alt.token_id == draft else " "
        percent = f"{100 * alt.prob:5.1f}%" if alt.prob >= 0.0005 or alt.prob == 0 else f"{100 * alt.prob:.2g}%"
        text = f"{mark}{fit(visible(alt.piece), width - 10)} {percent:>6}"
        cells.append(Content.styled(text, "bold $text-accent" if marked else "$text"))
    return cells


def _rank(alternatives: tuple[Alternative, ...], token: int | None) -> str:
    for i, alt in enumerate(alternatives):
        if alt.token_id == token:
            return "its first choice" if i == 0 else f"its #{i + 1}"
    return f"below its top {len(alternatives)}" if alternatives else "not among its listed tokens"


def greedy_why(decision: Decision, draft_piece, draft_id, p_draft, pick_piece, p_pick, verifier_top,
               tree: bool = False) -> str:
    """Greedy verification in one sentence: where the draft ranks in the verifier's list."""
    if decision is Decision.ACCEPTED:
        return f"Accepted: the draft {quote(draft_piece)} is the verifier's first choice (p {num(p_pick)})."
    if decision is Decision.REJECTED:
        return (f"Mismatch: the verifier's first choice is {quote(pick_piece)} (p {num(p_pick)}); the draft "
                f"{quote(draft_piece)} is {_rank(verifier_top, draft_id)} (p {num(p_draft)}), so "
                + ("this branch is not taken." if tree else f"{quote(pick_piece)} is taken and the block stops here."))
    return ""


def other_why(decision: Decision, result: StepResult, pick_piece, p_pick) -> str:
    if decision is Decision.BONUS:
        return (f"Bonus: every draft was kept, so the verifier's own next token {quote(pick_piece)} (p {num(p_pick)}) "
                f"comes with the same pass.")
    if decision is Decision.PLAIN:
        return f"Nothing was drafted: the verifier decoded {quote(pick_piece)} itself, as plain decoding would."
    if decision is Decision.STOPPED:
        return "Past the end: the text ended (EOS or the token limit) before this token."
    if decision is Decision.NOT_REACHED:
        if result.tree is not None:
            return "Not tried: the verifier accepted another branch before reaching this node."
        return ("Discarded: the block stopped at an earlier mismatch; verifier predictions after a rejected draft "
                "are discarded (they assumed the rejected token).")
    return ""


def sampling_why(rule, decision: Decision, position: Position | None, pick_piece) -> str:
    word = "Accepted" if rule.kept else "Rejected"
    text = f"{word}: {rule_sentence(rule)}."
    if decision is Decision.REJECTED and position is not None and position.residual_prob is not None:
        mass = position.residual_mass
        if mass is None and rule.q >= 1.0 and rule.p is not None:
            mass = 1.0 - rule.p  # a point-mass draft leaves all of p but the draft's own share
        held = f"holds {num(mass)} of p; " if mass is not None else ""
        text += (f" The leftover max(0, p − q) {held}{quote(pick_piece)} has {num(position.residual_prob)} of it "
                 f"(normalised) and was drawn.")
    return text


class PositionInspector(Static):
    def __init__(self, **kwargs):
        super().__init__("", **kwargs)
        self.border_title = "Position (←/→)"

    def show(self, result: StepResult | None, index: int) -> None:
        if result is None:
            self.border_title = "Position (←/→)"
            self.update(Content.styled("after a step: ←/→ picks a position,\n[ and ] browse earlier steps", "$text-muted"))
            return
        index = max(0, min(index, len(result.positions) - 1))
        position: Position = result.positions[index]
        word = decision_word(position.decision, 99, result.verify_mode)
        self.border_title = f"Step {result.step}, position {index + 1}/{len(result.positions)}: {word}"
        rule = chain_rule(result, position) if result.verify_mode == "sampling" else None
        if rule is not None:
            why = sampling_why(rule, position.decision, position, position.verifier_piece)
        elif position.decision in (Decision.ACCEPTED, Decision.REJECTED):
            why = greedy_why(position.decision, position.draft_piece, position.draft_id, position.p_verifier_of_draft,
                             position.verifier_piece, position.p_verifier, position.verifier_top)
        else:
            why = other_why(position.decision, result, position.verifier_piece, position.p_verifier)
        draft = None
        if position.draft_id is not None:
            q = position.q_drafter if position.q_drafter is not None else 0.0
            draft = (Alternative(position.draft_id, position.draft_piece or "", q),
                     Alternative(position.draft_id, position.draft_piece or "", position.p_verifier_of_draft or 0.0))
        self._columns(why, position.draft_id, position.draft_top, result.drafted, position.verifier_id,
                      position.verifier_piece, position.p_verifier, position.verifier_top, position, draft)

    def show_node(self, result: StepResult, node_index: int) -> None:
        """A tree node: the drafter's top-5 at its parent beside the verifier's top-5 at the same slot."""
        tree = result.tree
        node: TreeNode = tree.nodes[node_index]
        order = tree.drawn_order()
        word = decision_word(node.decision, 99, result.verify_mode)
        self.border_title = (f"Step {result.step}, node {order.index(node_index) + 1}/{len(order)} "
                             f"(depth {node.depth}): {word}")
        verifier_id, verifier_piece, p_verifier, verifier_top = tree.verifier_before(node)
        rule = node_rule(result, node) if result.verify_mode == "sampling" else None
        if rule is not None:
            why = sampling_why(rule, node.decision, None, verifier_piece)
        elif node.decision in (Decision.ACCEPTED, Decision.REJECTED):
            why = greedy_why(node.decision, node.piece, node.token_id, node.p_verifier_of_draft, verifier_piece,
                             p_verifier, verifier_top, tree=True)
        else:
            why = other_why(node.decision, result, verifier_piece, p_verifier)
        draft = (Alternative(node.token_id, node.piece, node.q_drafter),
                 Alternative(node.token_id, node.piece, node.p_verifier_of_draft))
        self._columns(why, node.token_id, node.draft_top, 1, verifier_id, verifier_piece, p_verifier, verifier_top,
                      None, draft)

    def _columns(self, why: str, draft_id, draft_top, drafted, verifier_id, verifier_piece, p_verifier, verifier_top,
                 position: Position | None, draft: tuple[Alternative, Alternative] | None) -> None:
        half = max(14, (self.content_size.width or 48) // 2)
        left = [Content.styled(fit("drafter top-5 (q)", half), "$text-muted")]
        resampled = position is not None and bool(position.residual_top)
        right = [Content.styled(fit("leftover top-5 (p−q)+" if resampled else "verifier top-5 (p)", half), "$text-muted")]
        if draft_id is None:
            slot = "(no draft this step)" if not drafted else "(bonus slot: no draft)"
            left.append(Content.styled(fit(slot, half), "$text-muted"))
        else:
            left += _column(draft_top, half, None, draft_id, (draft[0],))
        own = Alternative(verifier_id, verifier_piece, position.residual_prob if resampled else p_verifier)
        # The draft's own p is listed beside the verifier's pick (not in the leftover list, where it has none left).
        extra = (own,) if resampled or draft is None else (own, draft[1])
        right += _column(position.residual_top if resampled else verifier_top, half, verifier_id, draft_id, extra)
        lines = [Content(why)] if why else []  # model text: a Content is never parsed as markup
        for i in range(max(len(left), len(right))):
            l_cell = left[i] if i < len(left) else Content(" " * half)
            r_cell = right[i] if i < len(right) else Content("")
            lines.append(Content.assemble(l_cell.pad_right(max(0, half - l_cell.cell_length)), r_cell))
        lines.append(Content.styled(fit(MARKS, 2 * half), "$text-muted"))
        self.update(Content("\n").join(lines))
