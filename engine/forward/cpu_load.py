"""Is the CPU busy with something else? Watched between steps, so a slow step is explained instead of misread.

On a small machine another process halves or worse every timing here (on 2 cores a verify pass ran 30x slower
while another process held one core: docs/benchmarks.md), and c, r and the speed-up would read as if drafting had
stopped paying.
Two signals, cheap enough for every step (no sleep):
- other processes' CPU time since the previous look (/proc/stat minus this process's own), in cores, looked at
  once per SAMPLE_EVERY_S (reading /proc is not free, and a busy spell lasts longer than a step);
- this step's verify pass against the fastest pass of the same size seen so far in this run.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

BUSY_CORES = 0.5  # others kept at least half a core busy on average since the last look
SLOWDOWN = 3.0  # a verify pass took 3x the fastest one of its size in this run
MIN_EXCESS_S = 0.02  # ...and at least this much longer: sub-millisecond passes (tiny models) jitter by 3x for nothing
CALM_STEPS = 3  # steps without either signal before the flag clears (one calm step is no proof)
SAMPLE_EVERY_S = 0.2


@dataclass(frozen=True)
class Sample:
    busy_ticks: int  # all processes' non-idle CPU time (clock ticks)
    own_ticks: int  # this process's
    at: float  # monotonic seconds

    @classmethod
    def now(cls) -> "Sample | None":
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
            own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
            return cls(sum(fields) - fields[3] - fields[4], int(own[11]) + int(own[12]), time.monotonic())
        except (OSError, ValueError, IndexError):
            return None  # not Linux, or /proc hidden: only the slowdown signal is left


def busy_cores_between(first: Sample | None, last: Sample | None) -> float | None:
    """Cores that other processes kept busy between two samples, on average (None: unknown or too short to say)."""
    if first is None or last is None or last.at - first.at < 0.02:
        return None
    others = (last.busy_ticks - first.busy_ticks) - (last.own_ticks - first.own_ticks)
    return max(0.0, others / os.sysconf("SC_CLK_TCK") / (last.at - first.at))


def busy_reason(busy_cores: float | None, slowdown: float | None) -> str | None:
    """The words for the flag, or None when neither signal fired."""
    reasons = []
    if busy_cores is not None and busy_cores >= BUSY_CORES:
        reasons.append(f"other processes used {busy_cores:.1f} cores")
    if slowdown is not None and slowdown >= SLOWDOWN:
        reasons.append(f"a verify pass took {slowdown:.1f}x its fastest")
    return "; ".join(reasons) or None


class LoadWatch:
    """Between steps: the CPU-busy flag of a run (None while calm), and other processes' load for the thread count."""

    def __init__(self) -> None:
        self.last = Sample.now()
        self.fastest: dict[int, float] = {}  # verify pass rows -> fastest seconds seen in this run
        self.reason: str | None = None
        self.busy_cores: float | None = None
        self._calm = 0

    def check(self, rows: int, verify_s: float) -> str | None:
        """After a step whose verify pass fed `rows` tokens in `verify_s`: the flag's reason, or None."""
        if self.last is None or time.monotonic() - self.last.at >= SAMPLE_EVERY_S:
            sample = Sample.now()
            self.busy_cores = busy_cores_between(self.last, sample)
            self.last = sample
        fastest = self.fastest.get(rows)
        slowdown = verify_s / fastest if fastest and verify_s - fastest >= MIN_EXCESS_S else None
        if verify_s > 0 and (fastest is None or verify_s < fastest):
            self.fastest[rows] = verify_s
        reason = busy_reason(self.busy_cores, slowdown)
        if reason is not None:
            self.reason, self._calm = reason, 0
        elif self.reason is not None:
            self._calm += 1
            if self._calm >= CALM_STEPS:
                self.reason = None
        return self.reason
