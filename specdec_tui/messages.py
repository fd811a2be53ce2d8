"""Messages posted from worker threads to the app (post_message is thread-safe and never blocks)."""

from __future__ import annotations

from typing import Any

from textual.message import Message

from . import operations as ops
from .scheduler import Ticket


class LoadProgress(Message):
    def __init__(self, text: str, fraction: float):
        super().__init__()
        self.text = text
        self.fraction = fraction


class PositionClicked(Message):
    """A click on a chip column of the draft, verifier or comparison row."""

    def __init__(self, index: int):
        super().__init__()
        self.index = index


class Outcome(Message):
    """An operation ended; `ticket` says which one and in which epoch (a stale one is dropped)."""

    def __init__(self, ticket: Ticket, value: Any = None):
        super().__init__()
        self.ticket = ticket
        self.value = value


class Loaded(Outcome):
    """value: the Snapshot after loading and resetting to the prompt."""


class Stepped(Outcome):
    """value: (StepResult, Snapshot)."""


class ResetDone(Outcome):
    """value: the Snapshot after the reset."""


class DrafterSwitched(Outcome):
    """value: the Snapshot with the new drafter, reset to the prompt."""


class BaselineDone(Outcome):
    """value: the Snapshot with the baseline comparison."""


class Saved(Outcome):
    """value: the path of the trace."""


class OperationFailed(Outcome):
    """value: the exception (every failure becomes a message on screen, never a traceback)."""


_OUTCOMES: dict[type, type[Outcome]] = {
    ops.Load: Loaded, ops.Step: Stepped, ops.Reset: ResetDone, ops.SwitchDrafter: DrafterSwitched,
    ops.Baseline: BaselineDone, ops.Save: Saved,
}


def outcome(ticket: Ticket, value: Any) -> Outcome:
    if isinstance(value, Exception):
        return OperationFailed(ticket, value)
    return _OUTCOMES[type(ticket.operation)](ticket, value)
