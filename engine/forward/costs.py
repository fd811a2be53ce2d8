"""Measured costs outside the decode loop: one plain decoding step (the unit of the verify-cost ratio r), and a
verify pass of a given size (what a tree's extra nodes cost against its chain).

Kept out of `Session.step` (the hot path): the app calls it once after loading, in its worker thread.
"""

from __future__ import annotations

import statistics
import time

import torch

from .cached_lm import open_cached_lm


def plain_step_seconds(session, repeats: int = 3) -> float:
    """Median time of one plain decoding step: a 1-token verifier pass over the session's cached context."""
    return pass_seconds(session, 1, repeats)


def _timing_cache(session):
    """A KV cache of its own over the session's context (the session's caches stay untouched), and its context."""
    if not session.tokens:
        raise ValueError("no context yet: reset the session first")
    verifier = session.verifier
    lm = open_cached_lm(verifier.model, session.vocab, verifier.device, session.config.forward)
    context = session.tokens[-512:]  # a realistic cache length, bounded so the prefill stays short
    if len(context) > 1:
        lm.extend(context[:-1])
    return lm, context


def _timed_pass(lm, context: list[int], tokens: int) -> float:
    start = time.perf_counter()
    lm.extend(context[-1:] * tokens, keep=tokens)
    seconds = time.perf_counter() - start
    lm.rollback(len(context) - 1)
    return seconds


@torch.inference_mode()
def pass_seconds(session, tokens: int, repeats: int = 3) -> float:
    """Median time of one verifier pass over `tokens` new tokens after the session's cached context.

    What a verify pass of that size costs (k + 1 for a chain, nodes + 1 for a tree; its cost depends on the count,
    not on the mask). Uses its own KV cache (the session's caches are untouched), so it can run between steps.
    """
    lm, context = _timing_cache(session)
    times = [_timed_pass(lm, context, tokens) for _ in range(repeats + 1)]
    return statistics.median(times[1:])  # the first pass warms up buffers


@torch.inference_mode()
def verify_curve(session, sizes, rounds: int = 5, warmup: int = 3) -> dict[int, float]:
    """Seconds of a verify pass of each size: the fastest of `rounds`, the sizes interleaved in every round.

    The start-up prices of `-k auto`. Fastest, not median: right after loading, the first few dozen passes run
    slow (allocator and thread pool still settling) and a VM's spikes only ever slow a pass; on the AMD EPYC a
    median of 3 once priced a 1-token pass at 35.8 ms against 25 ms live, and auto then drafted a whole text at
    0.85x plain because a plain step looked dear. Interleaved, so a slow stretch hits every size alike and
    their ratios (what the planner compares) hold.
    """
    lm, context = _timing_cache(session)
    for _ in range(warmup):
        _timed_pass(lm, context, max(sizes))
    fastest = {n: float("inf") for n in sizes}
    for _ in range(rounds):
        for n in sizes:
            fastest[n] = min(fastest[n], _timed_pass(lm, context, n))
    return fastest
