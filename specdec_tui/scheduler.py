"""Model work one operation at a time (no textual): a queue, a busy flag, an epoch that voids stale results, and
auto-play.

A restart (reset, another drafter) bumps the epoch; an operation started before it still finishes in its thread
(a thread cannot be stopped mid forward pass) but its result is dropped, so it never reaches the screen.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .operations import Operation, Step


PLAY_DELAYS = (0.0, 0.3, 1.0)  # seconds between auto-play steps; `t` cycles through them


@dataclass
class AutoPlay:
    """Space plays and pauses; `t` changes the pause between steps. Asked after every operation for the next step."""

    on: bool = False
    delay_index: int = 1  # 0.3 s: slow enough to read each step as it lands

    @property
    def delay(self) -> float:
        return PLAY_DELAYS[self.delay_index]

    def slower(self) -> float:
        """The next pause of the cycle (0 -> 0.3 -> 1 -> 0 s)."""
        self.delay_index = (self.delay_index + 1) % len(PLAY_DELAYS)
        return self.delay


@dataclass(frozen=True)
class Ticket:
    operation: Operation
    epoch: int


class Scheduler:
    def __init__(self):
        self.queue: deque[Operation] = deque()
        self.epoch = 0
        self.running: Ticket | None = None
        self.ready = False  # the first operation (loading) has succeeded
        self.play = AutoPlay()

    @property
    def busy(self) -> bool:
        return self.running is not None

    @property
    def queued_steps(self) -> int:
        return sum(1 for op in self.queue if isinstance(op, Step))

    def start(self, operation: Operation) -> Ticket:
        """Mark `operation` as running now (the caller runs it)."""
        self.running = Ticket(operation, self.epoch)
        return self.running

    def submit(self, operation: Operation) -> None:
        """Queue an operation behind the others; a restart first voids what is queued or running."""
        if operation.restarts:
            self.epoch += 1
            self.queue = deque(op for op in self.queue if not (isinstance(op, Step) or op.restarts))
            self.queue.appendleft(operation)
        else:
            self.queue.append(operation)

    def next(self, finished: bool = False) -> Operation | None:
        """The next operation to start, or None while busy, before loading, or when nothing is queued.

        Steps queued after the run finished are dropped here (the status line already says it finished).
        """
        if self.busy or not self.ready:
            return None
        while self.queue:
            operation = self.queue.popleft()
            if isinstance(operation, Step) and finished:
                continue
            return operation
        return None

    def finish(self, ticket: Ticket) -> bool:
        """The operation of `ticket` ended; True if its result is still current (not voided by a restart)."""
        if self.running is ticket:
            self.running = None
        return ticket.epoch == self.epoch

    def play_delay(self, finished: bool) -> float | None:
        """Seconds until auto-play's next step, or None when none is due (paused, busy, queued work, or the end)."""
        if not self.play.on or self.busy or self.queue or finished:
            return None
        return max(self.play.delay, 0.01)  # a 0 s timer divides by zero in textual

    def stop(self) -> None:
        """The run ended or failed: auto-play stops and the steps queued behind would only repeat the message."""
        self.play.on = False
        self.drop_steps()

    def drop_steps(self) -> None:
        """After a failure or the end of the text, steps queued behind it would only repeat the message."""
        self.queue = deque(op for op in self.queue if not isinstance(op, Step))
