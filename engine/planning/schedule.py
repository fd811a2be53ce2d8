"""Block-size schedules: how k changes from one step to the next."""

from __future__ import annotations

from ..config import MAX_BLOCK_SIZE


def next_block_size(k: int, drafted: int, accepted: int) -> int:
    """transformers' heuristic schedule: +2 after a fully accepted block, -1 (not below 1) otherwise."""
    if drafted and accepted == drafted:
        return min(MAX_BLOCK_SIZE, k + 2)
    return max(1, k - 1)
