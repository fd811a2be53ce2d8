"""One typed summary of a run (counts, the theory line, what ran), shared by the app, the headless run and traces."""

from __future__ import annotations

from dataclasses import dataclass

from .config import SpecConfig
from .results import Stats, StepResult
from .theory import best_k, cost_ratio, expected_speedup, expected_tokens_per_step


def measured_block_size(steps, fallback: int) -> int:
    """The k the theory line speaks about: the block size of the latest step (it varies under the heuristic schedule)."""
    return steps[-1].block_size if steps else fallback


@dataclass(frozen=True)
class Theory:
    """Leviathan et al.'s expectations from the measured acceptance rate a and cost ratio c, at block size k."""

    k: int
    acceptance_rate: float
    cost_ratio: float | None
    expected_tokens_per_step: float | None = None
    expected_speedup: float | None = None
    best_k: int | None = None

    @classmethod
    def of(cls, stats: Stats, k: int) -> "Theory":
        a, c = stats.acceptance_rate, cost_ratio(stats)
        if c is None or not stats.steps:
            return cls(k, a, c)
        return cls(k, a, c, expected_tokens_per_step(a, k), expected_speedup(a, k, c), best_k(a, c))

    @property
    def known(self) -> bool:
        return self.expected_speedup is not None

    @property
    def drafting_pays(self) -> bool | None:
        """The one verdict: does some block size beat plain decoding by the formula? None before any measurement."""
        return None if self.best_k is None else self.best_k > 0

    def to_dict(self) -> dict:
        return {
            "cost_ratio": self.cost_ratio,
            "expected_tokens_per_step": self.expected_tokens_per_step,
            "expected_speedup": self.expected_speedup,
            "best_k": self.best_k,
        }


@dataclass(frozen=True)
class RunSummary:
    stats: Stats
    theory: Theory
    verifier: str
    drafter: str
    block_size: int
    finish_reason: str | None = None
    text: str | None = None
    generated_text: str | None = None

    @classmethod
    def of(cls, steps: tuple[StepResult, ...] | list[StepResult], stats: Stats, config: SpecConfig,
           finish_reason: str | None = None, text: str | None = None, generated_text: str | None = None,
           ) -> "RunSummary":
        k = measured_block_size(steps, config.block_size)
        return cls(stats, Theory.of(stats, k), config.verifier, config.drafter, k, finish_reason, text, generated_text)

    def to_dict(self) -> dict:
        """The `"type": "summary"` record of the JSON output and of traces (keys kept from format 1)."""
        texts = {"text": self.text, "generated_text": self.generated_text} if self.text is not None else {}
        return {
            "type": "summary",
            **texts,
            "finish_reason": self.finish_reason,
            **self.stats.summary(),
            **self.theory.to_dict(),
            "verifier": self.verifier,
            "drafter": self.drafter,
            "block_size": self.block_size,
        }
