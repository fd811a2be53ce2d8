"""How many threads torch's CPU kernels use. On a small, shared CPU the count matters: a decoding step is
memory-bound, so a second thread buys little alone and costs a lot when another process wants the core
(bench/threads.py measures it). None keeps torch's own default (one thread per core)."""

from __future__ import annotations

import torch


def apply_threads(count: int | None) -> int:
    """Set torch's intra-op thread count for this process (None: leave it) and return the count in use."""
    if count is not None and count != torch.get_num_threads():
        torch.set_num_threads(count)
    return torch.get_num_threads()
