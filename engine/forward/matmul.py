"""Few-row matrix products in the layout this CPU's BLAS is fastest at, chosen by timing both once per process.

A decode step multiplies 1 to k + 1 rows (a verify pass: k + 1; a tree: its nodes) by every weight matrix, and
which layout MKL is fast at for a few rows depends on the CPU, by up to 2-3x either way (bench/matmul_layouts.py
measures both; docs/architecture.md has the figures). A hard-coded layout is therefore a 2x loss on some machine,
so the first pass of each row count times both layouts over the model's own matrices (~0.1 s, like FFTW's
planning) and every later pass uses the faster.
"""

from __future__ import annotations

import os
import statistics
import time

import torch
import torch.nn.functional as F

PLANNED_ROWS = range(2, 33)  # a verify pass or a tree; longer passes (prompts) are proper matrix products
# rows -> True when `W @ x.T` is faster than `x @ W.T` on this machine. Per process: a second model loaded in the
# same process reuses the first one's plan (the choice is about the CPU's kernels far more than the shapes).
_W_FIRST: dict[int, bool] = {}


def linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x [T, in] @ weight[out, in].T in the layout planned for T rows (`x @ W.T` until planned)."""
    if _W_FIRST.get(x.shape[0], False):
        return torch.mm(weight, x.t()).t()
    return F.linear(x, weight)


def forced_layout() -> str | None:
    """SPECDEC_MATMUL=linear or =w-first skips the timing (reproducible numerics across runs, or a bench of one)."""
    value = os.environ.get("SPECDEC_MATMUL", "").strip().lower()
    return value if value in ("linear", "w-first") else None


@torch.inference_mode()
def plan(rows: int, weights: list[torch.Tensor], repeats: int = 3) -> None:
    """Time both layouts for `rows` rows over `weights` (read from memory, as in a pass) and remember the faster."""
    if rows not in PLANNED_ROWS or rows in _W_FIRST:
        return
    forced = forced_layout()
    if forced is not None:
        _W_FIRST[rows] = forced == "w-first"
        return
    x = torch.randn(rows, weights[0].shape[1])
    ways = {False: lambda: [F.linear(x, w) for w in weights], True: lambda: [torch.mm(w, x.t()) for w in weights]}
    times: dict[bool, list[float]] = {False: [], True: []}
    for fn in ways.values():
        fn()  # warm-up: first-call allocations
    for _ in range(repeats):  # alternate the two so a noisy moment hits both
        for w_first, fn in ways.items():
            start = time.perf_counter()
            fn()
            times[w_first].append(time.perf_counter() - start)
    _W_FIRST[rows] = statistics.median(times[True]) < statistics.median(times[False])


def planned() -> dict[int, str]:
    """The layout chosen for each planned row count (for the bench's JSON and the curious)."""
    return {rows: ("W @ x.T" if w_first else "x @ W.T") for rows, w_first in sorted(_W_FIRST.items())}
