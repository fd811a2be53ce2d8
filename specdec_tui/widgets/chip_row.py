"""Base of the three aligned rows (draft, verifier, comparison): holds the step, redraws on resize, maps clicks."""

from __future__ import annotations

from textual.events import Click
from textual.widgets import Static

from engine import StepResult

from ..chips import column_at
from ..messages import PositionClicked


class ChipRow(Static):
    TITLE = ""

    def __init__(self, **kwargs):
        super().__init__("", **kwargs)
        self.border_title = self.TITLE
        self.result: StepResult | None = None
        self.selected = 0

    def show(self, result: StepResult | None, selected: int = 0) -> None:
        self.result = result
        self.selected = selected
        self.refresh_content()

    def on_resize(self) -> None:
        self.refresh_content()

    def on_click(self, event: Click) -> None:
        offset = event.get_content_offset(self)
        if self.result is None or offset is None:
            return
        index = column_at(offset.x, self.content_size.width, len(self.result.positions))
        if index is not None:
            self.post_message(PositionClicked(index))

    def refresh_content(self) -> None:
        raise NotImplementedError
