"""A token tree, and its attention mask and position ids for one verifier pass. A chain is a tree with one branch.

Nodes are stored parents-first (every node's parent has a smaller index), which is also the order in which they
are fed to a model in one pass. Node -1 is the root: the context's last token. The accept rules over it are in
engine/verification/acceptance.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

ROOT = -1


@dataclass
class DraftTree:
    ids: list[int] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    # The distribution each node was drawn from, given its earlier siblings (a point mass for top-k children).
    q_rows: list[torch.Tensor] = field(default_factory=list)
    q_of: list[float] = field(default_factory=list)  # the drafter's probability of the node's token, for display
    drafter_probs: list[torch.Tensor | None] = field(default_factory=list)  # the drafter's distribution at the parent

    def add(self, token: int, parent: int, q_row: torch.Tensor, q_of: float, drafter_probs: torch.Tensor | None) -> int:
        assert parent < len(self.ids), "parents come first"
        self.ids.append(token)
        self.parents.append(parent)
        self.q_rows.append(q_row)
        self.q_of.append(q_of)
        self.drafter_probs.append(drafter_probs)
        return len(self.ids) - 1

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def is_chain(self) -> bool:
        """One branch (node i's parent is node i - 1): verified by a plain causal pass, no mask needed."""
        return all(parent == node - 1 for node, parent in enumerate(self.parents))

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
        tree = DraftTree()
        for old in keep:
            tree.add(self.ids[old], new_index[self.parents[old]], self.q_rows[old], self.q_of[old], self.drafter_probs[old])
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
