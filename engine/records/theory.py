"""Expected gains of speculative decoding (Leviathan et al., 2023) from a measured acceptance rate a and cost ratio c.

a: probability that a drafted token is accepted (assumed i.i.d. per position).
c: drafter time per drafted token / one plain decoding step (the verifier's 1-token pass).
r: verifier time for one verify pass (k + 1 tokens) / one plain decoding step; r = 1 when not measured.
A step costs k c + r plain steps and yields E[tokens per step] tokens, so the speed-up is E[tokens] / (r + k c).
"""

from __future__ import annotations

from ..config import MAX_BLOCK_SIZE
from .results import Stats


def expected_tokens_per_step(a: float, k: int) -> float:
    """(1 - a^(k+1)) / (1 - a): accepted drafts plus the verifier's own token, on average."""
    if a >= 1.0:
        return float(k + 1)
    return (1.0 - a ** (k + 1)) / (1.0 - a)


def expected_speedup(a: float, k: int, c: float, r: float = 1.0) -> float:
    """(1 - a^(k+1)) / ((1 - a)(r + k c)): tokens per step over the cost of a step in plain-step units."""
    return expected_tokens_per_step(a, k) / (k * c + r)


def best_k(a: float, c: float, k_max: int = MAX_BLOCK_SIZE, r: float = 1.0) -> int:
    """The block size the formula favours (r taken as measured at the current k); 0: drafting does not pay at all."""
    best, best_value = 0, 1.0  # k = 0 is plain decoding: speed-up 1
    for k in range(1, k_max + 1):
        value = expected_speedup(a, k, c, r)
        if value > best_value + 1e-12:
            best, best_value = k, value
    return best


def cost_ratio(stats: Stats, plain_step_s: float | None = None) -> float | None:
    """Measured c: mean drafter time per drafted token over one plain decoding step.

    Without a measured plain step, the verify pass stands in for it (r = 1).
    """
    if not stats.drafted or not stats.verifier_calls or stats.verify_s <= 0:
        return None
    unit = plain_step_s if plain_step_s else stats.verify_s / stats.verifier_calls
    return (stats.draft_s / stats.drafted) / unit


def verify_cost_ratio(stats: Stats, plain_step_s: float | None) -> float | None:
    """Measured r: mean verifier time per verify pass over one plain decoding step; None if either is missing."""
    if not plain_step_s or not stats.verifier_calls or stats.verify_s <= 0:
        return None
    return (stats.verify_s / stats.verifier_calls) / plain_step_s
