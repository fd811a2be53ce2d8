"""How many drafts each step kept, as a histogram over 0..k (the distribution, not only the mean)."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from engine import Stats

LEVELS = " ▁▂▃▄▅▆▇█"
ROWS = 2


def histogram_lines(accepted_per_step: tuple[int, ...], k: int) -> list[Content]:
    """Bars of ROWS lines (scale: the most frequent length), then the lengths 0..k and the counts."""
    top = max([k, *accepted_per_step])
    counts = [0] * (top + 1)
    for accepted in accepted_per_step:
        counts[accepted] += 1
    most = max(counts) or 1
    cell = 3 if top <= 12 else 2
    rows = []
    for row in range(ROWS - 1, -1, -1):
        chars = []
        for count in counts:
            eighths = round(8 * ROWS * count / most) - 8 * row
            chars.append(LEVELS[max(0, min(8, eighths))] * (cell - 1) + " ")
        rows.append(Content.assemble(("    ", ""), ("".join(chars), "$text-success")))
    axis = "".join(str(i).ljust(cell) for i in range(top + 1))
    total = "".join(str(c).ljust(cell) if c else "·".ljust(cell) for c in counts)
    return [*rows, Content.styled(f"len {axis}", "$text-muted"), Content.styled(f" n  {total}", "$text-muted")]


class AcceptedHistogram(Static):
    def __init__(self, **kwargs):
        super().__init__("", **kwargs)

    def show(self, stats: Stats, k: int) -> None:
        title = Content.styled("accepted drafts per step (0..k):", "$text-muted")
        if not stats.steps:
            self.update(Content("\n").join([title, Content.styled("  no steps yet", "$text-muted")]))
            return
        self.update(Content("\n").join([title, *histogram_lines(stats.accepted_per_step, k)]))
