"""How many threads torch's CPU kernels use. On a small, shared CPU the count matters (bench/threads.py, 2 cores,
the draft head at k = 2): alone, 2 threads decode at 27.1 tok/s against 16.6 with 1; beside a second decoding
process, 2 threads each collapse to 2.4 and 4.3 tok/s, while 1 thread each keep 17.4 and 17.8. So by default
(`threads=None`) the count is chosen once per process: one thread per core that other processes leave idle,
measured over a short window at start, at least 1.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

_TORCH_DEFAULT = torch.get_num_threads()  # one per core, before anything in this process changes it
_AUTO: int | None = None  # the automatic choice, made once: every later session of the process keeps it


def busy_elsewhere(window: float = 0.2) -> float | None:
    """Cores that other processes keep busy, averaged over `window` seconds (Linux /proc); None where unknown."""
    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
        own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        return busy, int(own[11]) + int(own[12])  # this process's utime + stime
    try:
        busy0, own0 = sample()
        start = time.monotonic()
        time.sleep(window)
        busy1, own1 = sample()
        elapsed = time.monotonic() - start
        return max(0.0, (busy1 - busy0 - (own1 - own0)) / os.sysconf("SC_CLK_TCK") / elapsed)
    except (OSError, ValueError, IndexError):
        return None


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
