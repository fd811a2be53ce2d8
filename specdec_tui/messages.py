"""Messages posted from worker threads to the app (post_message is thread-safe and never blocks)."""

from __future__ import annotations

from pathlib import Path

from textual.message import Message

from engine import StepResult

from . import operations as ops
from .scheduler import Ticket
from .view_model import Snapshot


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

    def __init__(self, ticket: Ticket):
        super().__init__()
        self.ticket = ticket


class Loaded(Outcome):
    def __init__(self, ticket: Ticket, snap: Snapshot):
        super().__init__(ticket)
        self.snap = snap  # after loading and resetting to the prompt


class Stepped(Outcome):
    def __init__(self, ticket: Ticket, step: tuple[StepResult, Snapshot]):
        super().__init__(ticket)
        self.result, self.snap = step


class ResetDone(Outcome):
    def __init__(self, ticket: Ticket, snap: Snapshot):
        super().__init__(ticket)
        self.snap = snap


class DrafterSwitched(Outcome):
    def __init__(self, ticket: Ticket, snap: Snapshot):
        super().__init__(ticket)
        self.snap = snap  # with the new drafter, reset to the prompt


class BaselineDone(Outcome):
    def __init__(self, ticket: Ticket, snap: Snapshot):
        super().__init__(ticket)
        self.snap = snap  # with the speed check's result


class Saved(Outcome):
    def __init__(self, ticket: Ticket, path: Path):
        super().__init__(ticket)
        self.path = path  # the trace written


class OperationFailed(Outcome):
    def __init__(self, ticket: Ticket, error: Exception):
        super().__init__(ticket)
        self.error = error  # every failure becomes a message on screen, never a traceback


_OUTCOMES: dict[type, type[Outcome]] = {
    ops.Load: Loaded, ops.Step: Stepped, ops.Reset: ResetDone, ops.SwitchDrafter: DrafterSwitched,
    ops.Baseline: BaselineDone, ops.Save: Saved,
}


def outcome(ticket: Ticket, value: object) -> Outcome:
    """The typed message for what `ticket`'s operation returned (or raised)."""
    if isinstance(value, Exception):
        return OperationFailed(ticket, value)
    return _OUTCOMES[type(ticket.operation)](ticket, value)
