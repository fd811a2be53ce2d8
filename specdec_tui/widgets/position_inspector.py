"""A closer look at one position: the drafter's and the verifier's top-5 side by side (left/right to move)."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from engine import Alternative, Position, StepResult

from ..chips import decision_word, fit, visible


def _column(alternatives: tuple[Alternative, ...], mark: int | None, width: int,
            chosen_outside: Alternative | None = None) -> list[Content]:
    """Top-5 rows, the marked token with ▸; a chosen token outside the top-5 (a sampled draw) is added below."""
    if chosen_outside is not None and all(alt.token_id != mark for alt in alternatives):
        alternatives = (*alternatives, chosen_outside)
    cells = []
    for alt in alternatives:
        if alt.prob <= 0 and alt.token_id != mark:
            continue  # filtered out by top-k / top-p: padding, not an alternative
        chosen = alt.token_id == mark
        percent = f"{100 * alt.prob:5.1f}%" if alt.prob >= 0.0005 or alt.prob == 0 else f"{100 * alt.prob:.2g}%"
        text = f"{'▸' if chosen else ' '}{fit(visible(alt.piece), width - 10)} {percent:>6}"
        cells.append(Content.styled(text, "bold $text-accent" if chosen else "$text"))
    return cells


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
        self._columns(position.draft_id, position.draft_top, result.drafted, position.verifier_id,
                      position.verifier_piece, position.p_verifier, position.verifier_top, position)

    def show_node(self, result: StepResult, node_index: int) -> None:
        """A tree node: the drafter's top-5 at its parent beside the verifier's top-5 at the same slot."""
        tree = result.tree
        node = tree.nodes[node_index]
        order = tree.drawn_order()
        word = decision_word(node.decision, 99, result.verify_mode)
        self.border_title = (f"Step {result.step}, node {order.index(node_index) + 1}/{len(order)} "
                             f"(depth {node.depth}): {word}")
        verifier_id, verifier_piece, p_verifier, verifier_top = tree.verifier_before(node)
        self._columns(node.token_id, node.draft_top, 1, verifier_id, verifier_piece, p_verifier, verifier_top, None)

    def _columns(self, draft_id, draft_top, drafted, verifier_id, verifier_piece, p_verifier, verifier_top,
                 position: Position | None) -> None:
        half = max(14, (self.content_size.width or 48) // 2)
        left = [Content.styled(fit("drafter top-5 (q)", half), "$text-muted")]
        resampled = position is not None and bool(position.residual_top)
        right = [Content.styled("residual top-5 (max(0,p−q))" if resampled else "verifier top-5 (p)", "$text-muted")]
        if draft_id is None:
            slot = "(no draft this step)" if not drafted else "(bonus slot: no draft)"
            left.append(Content.styled(fit(slot, half), "$text-muted"))
        else:
            left += _column(draft_top, draft_id, half)
        own = Alternative(verifier_id, verifier_piece, position.residual_prob if resampled else p_verifier)
        right += _column(position.residual_top if resampled else verifier_top, verifier_id, half, own)
        lines = []
        for i in range(max(len(left), len(right))):
            l_cell = left[i] if i < len(left) else Content(" " * half)
            r_cell = right[i] if i < len(right) else Content("")
            lines.append(Content.assemble(l_cell.pad_right(max(0, half - l_cell.cell_length)), r_cell))
        self.update(Content("\n").join(lines))
