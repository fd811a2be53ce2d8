"""Expected gains of speculative decoding (Leviathan et al., 2023) from a measured acceptance rate a and cost ratio c.

a: probability that a drafted token is accepted (assumed i.i.d. per position).
c: drafter time per drafted token / verifier time per step.
"""

from __future__ import annotations

from .config import MAX_BLOCK_SIZE
from .results import Stats


def expected_tokens_per_step(a: float, k: int) -> float:
    """(1 - a^(k+1)) / (1 - a): accepted drafts plus the verifier's own token, on average."""
    if a >= 1.0:
        return float(k + 1)
    return (1.0 - a ** (k + 1)) / (1.0 - a)


def expected_speedup(a: float, k: int, c: float) -> float:
    """(1 - a^(k+1)) / ((1 - a)(k c + 1)): tokens per step over the cost of a step in verifier-step units."""
    return expected_tokens_per_step(a, k) / (k * c + 1.0)


def best_k(a: float, c: float, k_max: int = MAX_BLOCK_SIZE) -> int:
    """The block size the formula favours; 0 means drafting does not pay at all."""
    best, best_value = 0, 1.0  # k = 0 is plain decoding: speed-up 1
    for k in range(1, k_max + 1):
        value = expected_speedup(a, k, c)
        if value > best_value + 1e-12:
            best, best_value = k, value
    return best


def cost_ratio(stats: Stats) -> float | None:
    """Measured c: mean drafter time per drafted token over mean verifier time per step."""
    if not stats.drafted or not stats.verifier_calls or stats.verify_s <= 0:
        return None
    return (stats.draft_s / stats.drafted) / (stats.verify_s / stats.verifier_calls)
