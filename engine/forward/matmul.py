"""Few-row matrix products in the layout this CPU's BLAS is fastest at, chosen by timing once per process.

A decode step multiplies 1 to k + 1 rows (a plain step or a drafting pass: 1; a verify pass: k + 1; a tree: its
nodes) by every weight matrix, and which layout MKL is fast at for a few rows depends on the CPU, by up to 2-3x
either way (bench/matmul_layouts.py measures them; docs/architecture.md has the figures). A hard-coded layout is
therefore a 2x loss on some machine, so the first pass of each row count times the layouts over the model's own
matrices (~0.1 s, like FFTW's planning) and every later pass uses the fastest. One row has a third way: as a
2-row product whose second row is thrown away. On the AMD EPYC of 3 Dec 2026 MKL's matrix-vector path (one row)
took 47 ms over the model's matrices where two rows took 34 ms: plain decoding ran 1.43x faster as two rows
(bench/one_row.py), and every speed-up measured against the slow one had looked that much better.
"""

from __future__ import annotations

import os
import statistics
import time

import torch
import torch.nn.functional as F

LINEAR, W_FIRST, PADDED = "x @ W.T", "W @ x.T", "W @ [x; x].T"  # PADDED: one row computed as two
PLANNED_ROWS = range(1, 33)  # a plain step, a drafting pass, a verify pass or a tree; prompts are proper products
# rows -> the layout for that row count on this machine. Per process: a second model loaded in the same process
# reuses the first one's plan (the choice is about the CPU's kernels far more than the shapes).
_LAYOUT: dict[int, str] = {}


def linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x [T, in] @ weight[out, in].T in the layout planned for T rows (`x @ W.T` until planned)."""
    return product(_LAYOUT.get(x.shape[0], LINEAR), x, weight)


def product(layout: str, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    if layout == W_FIRST:
        return torch.mm(weight, x.t()).t()
    if layout == PADDED:
        return torch.mm(weight, torch.cat((x, x)).t())[:, :1].t()
    return F.linear(x, weight)


def forced_layout() -> str | None:
    """SPECDEC_MATMUL=linear or =w-first skips the timing (reproducible numerics across runs, or a bench of one)."""
    value = os.environ.get("SPECDEC_MATMUL", "").strip().lower()
    return {"linear": LINEAR, "w-first": W_FIRST}.get(value)


def layouts_for(rows: int) -> tuple[str, ...]:
    return (LINEAR, W_FIRST, PADDED) if rows == 1 else (LINEAR, W_FIRST)


@torch.inference_mode()
def plan(rows: int, weights: list[torch.Tensor], repeats: int = 3) -> None:
    """Time each layout for `rows` rows over `weights` (read from memory, as in a pass) and remember the fastest."""
    if rows not in PLANNED_ROWS or rows in _LAYOUT:
        return
    forced = forced_layout()
    if forced is not None:
        _LAYOUT[rows] = forced
        return
    x = torch.randn(rows, weights[0].shape[1])
    times: dict[str, list[float]] = {layout: [] for layout in layouts_for(rows)}
    for layout in times:  # warm-up: first-call allocations
        [product(layout, x, w) for w in weights]
    for _ in range(repeats):  # alternate the layouts so a noisy moment hits all of them
        for layout in times:
            start = time.perf_counter()
            [product(layout, x, w) for w in weights]
            times[layout].append(time.perf_counter() - start)
    _LAYOUT[rows] = min(times, key=lambda layout: statistics.median(times[layout]))


def planned() -> dict[int, str]:
    """The layout chosen for each planned row count (for the bench's JSON and the curious)."""
    return dict(sorted(_LAYOUT.items()))
