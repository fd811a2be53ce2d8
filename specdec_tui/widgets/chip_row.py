"""Base of the three aligned rows (draft, verifier, comparison): holds the step, redraws on resize, maps clicks."""

from __future__ import annotations

from textual.events import Click
from textual.widgets import Static

from engine import StepResult

from ..chips import LABEL_WIDTH, column_at, column_width
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
        self.redraw()

    def on_resize(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        self.refresh_content()
        self.mark_hidden()

    def mark_hidden(self) -> None:
        """Columns that do not fit (large k on a narrow pane) are said to be there, never silently cut."""
        columns = len(self.result.positions) if self.result is not None and self.result.drafted else 0
        total = self.content_size.width
        if not columns or not total:
            self.border_subtitle = ""
            return
        fits = max(0, (total - LABEL_WIDTH) // column_width(total, columns))
        self.border_subtitle = f"▸ columns {fits + 1}-{columns} hidden (←/→: inspector)" if fits < columns else ""

    def on_click(self, event: Click) -> None:
        offset = event.get_content_offset(self)
        if self.result is None or offset is None:
            return
        index = column_at(offset.x, self.content_size.width, len(self.result.positions))
        if index is not None:
            self.post_message(PositionClicked(index))

    def refresh_content(self) -> None:
        raise NotImplementedError
