"""Messages posted from worker threads to the app (post_message is thread-safe and never blocks)."""

from __future__ import annotations

from textual.message import Message


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
