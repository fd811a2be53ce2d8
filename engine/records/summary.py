"""One typed summary of a run (counts, the theory line, what ran), shared by the app, the headless run and traces."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..config import SpecConfig
from .results import Stats, StepResult
from .theory import best_k, cost_ratio, expected_speedup, expected_tokens_per_step, verify_cost_ratio


def plan_label(reason: str) -> str:
    """The shape part of a plan's reason: 'auto: chain k=2 (head drafts); r(3) = ...' -> 'chain k=2'."""
    return reason.removeprefix("auto: ").split(";")[0].split(" (")[0]


def measured_block_size(steps, fallback: int) -> int:
    """The k the theory line speaks about: the block size of the latest step (it varies under the heuristic schedule)."""
    return steps[-1].block_size if steps else fallback


@dataclass(frozen=True)
class Theory:
    """Leviathan et al.'s expectations from the measured acceptance rate a and costs c and r, at block size k.

    c and r are in units of one plain decoding step (engine/records/theory.py); r is None when no plain step was measured
    (then the verify pass is the unit and r = 1 in the formulas).
    """

    k: int
    acceptance_rate: float
    cost_ratio: float | None
    verify_cost_ratio: float | None = None
    tokens_per_verifier_call: float = 0.0
    expected_tokens_per_step: float | None = None
    expected_speedup: float | None = None
    best_k: int | None = None

    @classmethod
    def of(cls, stats: Stats, k: int, plain_step_s: float | None = None) -> "Theory":
        a, c, r = stats.acceptance_rate, cost_ratio(stats, plain_step_s), verify_cost_ratio(stats, plain_step_s)
        if c is None or not stats.steps:
            return cls(k, a, c, r, stats.tokens_per_verifier_call)
        unit = r or 1.0
        return cls(k, a, c, r, stats.tokens_per_verifier_call, expected_tokens_per_step(a, k),
                   expected_speedup(a, k, c, unit), best_k(a, c, r=unit))

    @property
    def measured_speedup(self) -> float | None:
        """The formula with the measured tokens per verifier call instead of the i.i.d. expectation."""
        if self.cost_ratio is None:
            return None
        return self.tokens_per_verifier_call / ((self.verify_cost_ratio or 1.0) + self.k * self.cost_ratio)

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
            "verify_cost_ratio": self.verify_cost_ratio,
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
    plain_step_s: float | None = None
    auto: str | None = None  # the auto schedule's latest choice and its reason
    auto_choices: tuple[tuple[str, int], ...] = ()  # how often it chose each shape, most often first
    tree: str | None = None  # what ran: --tree, the verifier's forward, torch's thread count
    forward: str = "auto"
    threads: int | None = None

    @classmethod
    def of(cls, steps: tuple[StepResult, ...] | list[StepResult], stats: Stats, config: SpecConfig,
           finish_reason: str | None = None, text: str | None = None, generated_text: str | None = None,
           plain_step_s: float | None = None, threads: int | None = None) -> "RunSummary":
        k = measured_block_size(steps, config.block_size)
        plans = [step.plan for step in steps if step.plan]
        choices = Counter(plan_label(plan) for plan in plans).most_common()
        return cls(stats, Theory.of(stats, k, plain_step_s), config.verifier, config.drafter, k, finish_reason, text,
                   generated_text, plain_step_s, plans[-1] if plans else None, tuple(choices), config.tree,
                   config.forward, threads)

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
            "plain_step_s": self.plain_step_s,
            "auto": self.auto,
            "auto_choices": dict(self.auto_choices),
            "tree": self.tree,
            "threads": self.threads,
            "forward": self.forward,
        }
