"""The tree of a tree step, drawn: every node with its piece and q, the verifier's choice after it with p,
the accepted path highlighted and the refused or unreached branches dimmed. Hidden for chain steps."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from engine import Decision, StepResult
from engine import TreeNode, TreeStep

from ..chips import probability, visible
from ..narration import node_rule, num

MARK = {
    Decision.ACCEPTED: ("✓", "bold $text on $success-muted"),
    Decision.STOPPED: ("■", "$text-muted"),
    Decision.REJECTED: ("✗", "$text-error"),
    Decision.NOT_REACHED: ("·", "$text-muted"),
}


def tree_lines(tree: TreeStep, selected: int | None = None, result: StepResult | None = None) -> list[Content]:
    """One line per node, depth first, under a root line for the context; the inspected node marked ◀."""
    lines = [
        Content.assemble(
            ("context", "$text-muted"), " → verifier ", (visible(tree.root_verifier_piece), "bold"),
            (f" p {probability(tree.root_p_verifier)}", "$text-muted"),
        )
    ]

    def walk(parent: int, indent: str) -> None:
        children = tree.children(parent)
        for i, node in enumerate(children):
            last = i == len(children) - 1
            rule = node_rule(result, node) if result is not None and result.verify_mode == "sampling" else None
            lines.append(_node_line(node, indent + ("└─" if last else "├─"), node.index == selected, rule))
            walk(node.index, indent + ("  " if last else "│ "))

    walk(-1, "")
    return lines


def _node_line(node: TreeNode, branch: str, selected: bool = False, rule=None) -> Content:
    mark, style = MARK[node.decision]
    dim = node.decision in (Decision.NOT_REACHED, Decision.STOPPED)
    piece_style = "$text-muted" if dim else style if node.decision is Decision.ACCEPTED else "$text"
    # Sampling: the q the rule used (1 for a top-k child), else the drafter's softmax for information.
    q = num(rule.q) if rule is not None else probability(node.q_drafter)
    parts = [(branch, "$text-muted"), (mark, style), " ", (visible(node.piece), piece_style), (f" q {q}", "$text-muted")]
    if rule is not None:  # the draw against min(1, p/q), p being the residual after refused siblings
        parts.append((f" u {rule.shown_u()}{'<' if rule.kept else '≥'}{rule.shown_ratio_for_u()}", "$text-muted"))
    parts += [(" → ", "$text-muted"), (visible(node.verifier_piece), "$text-muted" if dim else "$text"),
              (f" p {probability(node.p_verifier)}", "$text-muted")]
    if selected:
        parts += [("  ◀ inspected", "bold $text-accent")]
    return Content.assemble(*parts)


def tree_title(result: StepResult) -> str:
    tree = result.tree
    return (f"Tree {tree.shape} · {len(tree.nodes)} nodes verified in one pass · "
            f"path {len(tree.path)} of depth {tree.depth} · +{len(result.emitted)} tokens")


class TreeView(Static):
    """Shown only while the displayed step is a tree step."""

    def __init__(self, **kwargs):
        super().__init__("", **kwargs)
        self.border_title = "Tree"
        self.display = False  # until a tree step is shown

    def show(self, result: StepResult | None, selected: int | None = None) -> None:
        tree = result.tree if result is not None else None
        self.display = tree is not None
        if tree is None:
            return
        self.border_title = tree_title(result)
        lines = tree_lines(tree, selected, result)
        room = self._room()
        self.border_subtitle = ""
        if selected is not None and len(lines) > room:  # keep the inspected node in view in a short box
            line = 1 + tree.drawn_order().index(selected)
            start = max(0, min(line - room // 2, len(lines) - room))
            self.border_subtitle = f"lines {start + 1}-{start + room} of {len(lines)} (←/→)"
            lines = lines[start : start + room]
        self.update(Content("\n").join(lines))

    def _room(self) -> int:
        """Lines the box shows at most (its max-height less the border), for the current layout's CSS."""
        limit = self.styles.max_height
        return max(1, limit.cells - 2) if limit is not None and limit.is_cells else 10**6
