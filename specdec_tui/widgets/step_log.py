"""One row per step: drafted, accepted, emitted text, time; newest last."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from engine import StepResult

from ..chips import fit, visible


class StepLog(DataTable):
    def __init__(self, **kwargs):
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.show_cursor = False  # the cursor marks the browsed step only
        self.border_title = "Step log"

    def on_mount(self) -> None:
        self.add_columns("step", "k", "kept", "acc so far", "new", "emitted text", "draft s", "verify s")

    def show(self, steps: tuple[StepResult, ...], browsing: bool = False) -> None:
        """The steps up to the one shown; when browsing an earlier step (`[`), its row is highlighted."""
        if len(steps) < self.row_count:
            self.clear()
        drafted = sum(r.depth for r in steps[: self.row_count])
        accepted = sum(r.accepted for r in steps[: self.row_count])
        for result in steps[self.row_count :]:
            # The notebook's acc_rate_so_far: accepted over drafted positions (a tree: its depth, per accepted path).
            drafted, accepted = drafted + result.depth, accepted + result.accepted
            self.add_row(
                str(result.step),
                str(result.drafted),
                f"{result.accepted}/{result.drafted}",
                f"{100 * accepted / drafted:.1f}%" if drafted else "n/a",
                str(len(result.emitted)),
                Text(fit(visible(result.emitted_text), max(8, self.size.width - 64)).rstrip()),  # wide terminals: more text; a str cell would be parsed as markup
                f"{result.draft_s:.3f}",
                f"{result.verify_s:.3f}",
            )
        self.show_cursor = browsing
        if self.row_count:
            self.move_cursor(row=self.row_count - 1)
            self.scroll_end(animate=False)
