"""The shape of a tree draft, parsed from `--tree`: fixed widths per depth, or a dynamic node budget.

No torch here: config validation and the app parse shapes without loading models.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

MAX_TREE_DEPTH = 16
MAX_TREE_WIDTH = 8
MAX_TREE_NODES = 64
# A dynamic tree expands this many nodes per depth, each with this many children (EAGLE-2's top-k, scaled down
# for a CPU); the final tree keeps the budget's most probable nodes.
DYNAMIC_BRANCH = 4


@dataclass(frozen=True)
class TreeShape:
    spec: str
    widths: tuple[int, ...] = ()  # static: children per node at depth 1, 2, ...
    budget: int = 0  # dynamic: nodes kept, by cumulative drafter probability

    @property
    def dynamic(self) -> bool:
        return self.budget > 0

    def depth(self, block_size: int) -> int:
        """Static trees are as deep as their widths; a dynamic tree is as deep as the block size."""
        return block_size if self.dynamic else len(self.widths)

    def max_nodes(self, block_size: int) -> int:
        if self.dynamic:
            return self.budget
        total, level = 0, 1
        for width in self.widths:
            level *= width
            total += level
        return total


AUTO_TREE = "auto"  # chains or trees, chosen each step by measurement (engine/planning/auto_plan.py)


def parse_tree(spec: str | None) -> TreeShape | None:
    """`3,2,1,1` (top-3 at depth 1, top-2 under each at depth 2, ...) or `dynamic:N`; None or "" for a chain, and for
    `auto`, whose shape the session's planner chooses step by step."""
    if spec is None or not str(spec).strip() or str(spec).strip() == AUTO_TREE:
        return None
    text = str(spec).strip()
    if text.startswith("dynamic"):
        _, _, count = text.partition(":")
        if not count.strip().isdigit() or not 1 <= int(count) <= MAX_TREE_NODES:
            raise ConfigError(f"a dynamic tree needs a node budget 1..{MAX_TREE_NODES}, e.g. dynamic:8 (got {text!r})")
        return TreeShape(text, budget=int(count))
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() for p in parts):
        raise ConfigError(f"tree widths are comma-separated counts, e.g. 3,2,1,1, or dynamic:N (got {text!r})")
    widths = tuple(int(p) for p in parts)
    if not 1 <= len(widths) <= MAX_TREE_DEPTH:
        raise ConfigError(f"a tree is 1..{MAX_TREE_DEPTH} levels deep, got {len(widths)} in {text!r}")
    if not all(1 <= w <= MAX_TREE_WIDTH for w in widths):
        raise ConfigError(f"each tree width must be 1..{MAX_TREE_WIDTH}, got {text!r}")
    shape = TreeShape(text, widths=widths)
    if shape.max_nodes(0) > MAX_TREE_NODES:
        raise ConfigError(
            f"the tree {text!r} has {shape.max_nodes(0)} nodes; at most {MAX_TREE_NODES} are verified in one pass"
        )
    return shape
