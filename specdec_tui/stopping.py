"""SIGTERM and SIGHUP stop a headless run the way Ctrl+C does, so a killed run still finishes its trace.

The handler raises `Stopped` (a KeyboardInterrupt) in the main thread between two bytecodes, so the run's one
`except KeyboardInterrupt` handles all three signals; the exit status is 128 + the signal number, as a shell
reports a process killed by it.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Stopped(KeyboardInterrupt):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @staticmethod
    def exit_code(stop: KeyboardInterrupt) -> int:
        return 128 + (stop.signum if isinstance(stop, Stopped) else signal.SIGINT)

    @staticmethod
    def name(code: int) -> str:
        try:
            return signal.Signals(code - 128).name
        except ValueError:
            return f"signal {code - 128}"


def _raise(signum, frame) -> None:
    raise Stopped(signum)


@contextmanager
def signals_stop(ignore: bool = False):
    """Inside: SIGTERM/SIGHUP raise Stopped; with `ignore`, these and Ctrl+C are ignored while the run saves."""
    if threading.current_thread() is not threading.main_thread():  # signal handlers live in the main thread only
        yield
        return
    handler = signal.SIG_IGN if ignore else _raise
    signums = SIGNALS + ((signal.SIGINT,) if ignore else ())  # Ctrl+C keeps its own KeyboardInterrupt
    previous = {signum: signal.signal(signum, handler) for signum in signums}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
