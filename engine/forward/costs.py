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


@torch.inference_mode()
def pass_seconds(session, tokens: int, repeats: int = 3) -> float:
    """Median time of one verifier pass over `tokens` new tokens after the session's cached context.

    What a verify pass of that size costs (k + 1 for a chain, nodes + 1 for a tree; its cost depends on the count,
    not on the mask). Uses its own KV cache (the session's caches are untouched), so it can run between steps.
    """
    if not session.tokens:
        raise ValueError("no context yet: reset the session first")
    verifier = session.verifier
    lm = open_cached_lm(verifier.model, session.vocab, verifier.device, session.config.forward)
    context = session.tokens[-512:]  # a realistic cache length, bounded so the prefill stays short
    if len(context) > 1:
        lm.extend(context[:-1])
    block = context[-1:] * tokens
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        lm.extend(block, keep=tokens)
        times.append(time.perf_counter() - start)
        lm.rollback(len(context) - 1)
    return statistics.median(times[1:])  # the first pass warms up buffers
