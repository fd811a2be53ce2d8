"""A token tree: its attention mask and position ids, and the greedy and sampling accept rules over it.

Nodes are stored parents-first (every node's parent has a smaller index), which is also the order in which they
are fed to a model in one pass. Node -1 is the root: the context's last token.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .acceptance import accept_probability, residual
from .sampling import sample

ROOT = -1


@dataclass
class DraftTree:
    ids: list[int] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    # The distribution each node was drawn from, given its earlier siblings (a point mass for top-k children).
    q_rows: list[torch.Tensor] = field(default_factory=list)
    q_of: list[float] = field(default_factory=list)  # the drafter's probability of the node's token, for display
    shown: list[torch.Tensor | None] = field(default_factory=list)  # the drafter's distribution at the parent
    seconds: float = 0.0

    def add(self, token: int, parent: int, q_row: torch.Tensor, q_of: float, shown: torch.Tensor | None) -> int:
        assert parent < len(self.ids), "parents come first"
        self.ids.append(token)
        self.parents.append(parent)
        self.q_rows.append(q_row)
        self.q_of.append(q_of)
        self.shown.append(shown)
        return len(self.ids) - 1

    def __len__(self) -> int:
        return len(self.ids)

    def depth_of(self, node: int) -> int:
        depth = 0
        while node != ROOT:
            node, depth = self.parents[node], depth + 1
        return depth

    @property
    def depth(self) -> int:
        return max((self.depth_of(n) for n in range(len(self))), default=0)

    def path_to(self, node: int) -> list[int]:
        """Nodes from depth 1 down to `node` (empty for the root)."""
        path = []
        while node != ROOT:
            path.append(node)
            node = self.parents[node]
        return path[::-1]

    def children(self, node: int) -> list[int]:
        """In the order they were drafted, which is the order the sampling rule tries them."""
        return [c for c, parent in enumerate(self.parents) if parent == node]

    def select(self, keep: list[int]) -> "DraftTree":
        """The subtree of the nodes in `keep` (each with its parent kept), renumbered parents-first."""
        keep = sorted(keep)
        new_index = {ROOT: ROOT, **{old: new for new, old in enumerate(keep)}}
        tree = DraftTree(seconds=self.seconds)
        for old in keep:
            tree.add(self.ids[old], new_index[self.parents[old]], self.q_rows[old], self.q_of[old], self.shown[old])
        return tree


def tree_attention(ancestors: list[list[int]], prefix: int, cached: int) -> torch.Tensor:
    """The boolean mask [T, cached + T] for feeding T new tokens after `cached` rows.

    Every new token sees the first `prefix` rows (the context), the rows `ancestors[i]` lists (its ancestors,
    which may sit among the cached rows past the prefix) and itself (row cached + i); nothing else, so sibling
    branches never see each other.
    """
    count = len(ancestors)
    mask = torch.zeros(count, cached + count, dtype=torch.bool)
    mask[:, :prefix] = True
    for i, rows in enumerate(ancestors):
        mask[i, list(rows) + [cached + i]] = True
    return mask


def verify_inputs(tree: DraftTree, pending: list[int], cached: int) -> tuple[list[int], torch.Tensor, list[int]]:
    """Tokens, mask and positions of one verifier pass: the `pending` context tokens causally, then every node.

    The context is `cached + len(pending)` tokens long; a node at depth d sits at position context - 1 + d and
    sees the whole context, its ancestors and itself.
    """
    context = cached + len(pending)
    ancestors = [list(range(cached, cached + i)) for i in range(len(pending))]
    positions = list(range(cached, context))
    for node in range(len(tree)):
        path = tree.path_to(node)
        ancestors.append([context + a for a in path[:-1]] + list(range(cached, context)))
        positions.append(context - 1 + len(path))
    return pending + tree.ids, tree_attention(ancestors, cached, cached), positions


# ---- accept rules -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TreeVerdict:
    path: tuple[int, ...]  # accepted nodes, depth 1 first
    next_token: int  # the verifier's token after the path: a correction, or a bonus after a leaf
    examined: dict  # node -> (accept probability, draw) for nodes the sampling rule tried; greedy: node -> None


def accept_tree_greedy(tree: DraftTree, verifier_argmax: list[int]) -> TreeVerdict:
    """Follow the verifier's argmax from the root while a child carries it.

    `verifier_argmax[0]` is the verifier's token after the root, `verifier_argmax[i + 1]` after node i.
    """
    node, path, examined = ROOT, [], {}
    while True:
        target = verifier_argmax[node + 1]
        children = tree.children(node)
        examined.update({c: None for c in children})
        match = next((c for c in children if tree.ids[c] == target), None)
        if match is None:
            return TreeVerdict(tuple(path), target, examined)
        path.append(match)
        node = match


def accept_tree_sampled(tree: DraftTree, p_rows: torch.Tensor, generator: torch.Generator) -> TreeVerdict:
    """Recursive rejection sampling over siblings (SpecInfer / EAGLE): the emitted tokens are distributed as p.

    At each node on the path, the children are tried in drafting order. Child x, drawn from q (the drafter's
    distribution given the siblings drawn before it), is kept with probability min(1, p(x) / q(x)); after a
    rejection, p becomes the residual normalize(max(0, p - q)) for the next sibling. When every child is refused,
    the next token is drawn from the last residual; after a leaf, from p itself (a bonus).
    """
    node, path, examined = ROOT, [], {}
    while True:
        p = p_rows[node + 1]
        kept = None
        for child in tree.children(node):
            token, q = tree.ids[child], tree.q_rows[child]
            ratio = accept_probability(float(p[token]), float(q[token]))
            u = float(torch.rand((), generator=generator))
            examined[child] = (ratio, u)
            if u < ratio:
                kept = child
                break
            p = residual(p, q)
        if kept is None:
            return TreeVerdict(tuple(path), sample(p, generator), examined)
        path.append(kept)
        node = kept
