"""How many threads torch's CPU kernels use. On a small, shared CPU the count matters: two decoding processes with
2 threads each on 2 cores collapse to a fraction of their speed, while 1 thread each keep theirs (bench/threads.py;
figures in docs/benchmarks.md, "A busy CPU"). So by default
(`threads=None`) the count is one thread per core that other processes leave idle, at least 1: measured over a
short window at start, and chosen again while a session runs when its load watch (engine/forward/cpu_load.py) sees the
other processes' load change.
"""

from __future__ import annotations

import time

import torch

from ..forward.cpu_load import Sample, busy_cores_between

_TORCH_DEFAULT = torch.get_num_threads()  # one per core, before anything in this process changes it
_AUTO: int | None = None  # the automatic choice, made once: every later session of the process keeps it


def busy_elsewhere(window: float = 0.2) -> float | None:
    """Cores that other processes keep busy, averaged over `window` seconds (Linux /proc); None where unknown."""
    first = Sample.now()
    time.sleep(window)
    return busy_cores_between(first, Sample.now())


def auto_threads(cores: int | None = None, busy: float | None = None) -> int:
    """One thread per core left idle by other processes (torch's default count where the load is unknown)."""
    cores = cores or _TORCH_DEFAULT
    if busy is None:
        return cores
    return max(1, min(cores, cores - round(busy)))


def apply_threads(count: int | None) -> int:
    """Set torch's intra-op thread count for this process (None: the automatic choice) and return the count in use."""
    global _AUTO
    if count is None:
        if _AUTO is None:
            _AUTO = auto_threads(busy=busy_elsewhere())
        count = _AUTO
    if count != torch.get_num_threads():
        torch.set_num_threads(count)
    return torch.get_num_threads()


def rechoose_threads(busy: float | None) -> int:
    """The automatic count again, for the load other processes put on the CPU now (a session that runs for minutes
    outlives the load it started under); returns the count in use."""
    global _AUTO
    _AUTO = auto_threads(busy=busy)
    return apply_threads(None)
