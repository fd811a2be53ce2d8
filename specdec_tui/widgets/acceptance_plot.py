"""Acceptance over the steps, with labelled axes: tokens per step as bars (0..k+1), the running acceptance rate as •."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from engine import StepResult

LEVELS = " ▁▂▃▄▅▆▇█"
ROWS = 4
# The • scale, on the right: row r holds rates in [r/4, (r+1)/4), so a 20% rate sits on the bottom row, labelled
# for what it is, not by the left axis's "0" (which counts tokens).
RIGHT = (" <25%", " 25%+", " 50%+", " 75%+")


def plot_lines(steps: tuple[StepResult, ...], width: int) -> list[Content]:
    """The latest steps that fit in `width` columns; y: tokens per step on 0..max(k)+1, • = acceptance so far."""
    shown = steps[-max(1, width - 5 - len(RIGHT[0])):]
    top = max(s.block_size for s in steps) + 1
    drafted = accepted = 0
    rates = []
    for s in steps:
        drafted, accepted = drafted + s.drafted, accepted + s.accepted
        rates.append(accepted / drafted if drafted else None)
    rates = rates[-len(shown):]
    lines = []
    for row in range(ROWS - 1, -1, -1):
        label = f"{top:>3}┤" if row == ROWS - 1 else ("  0┤" if row == 0 else "   │")
        parts: list[tuple[str, str] | str] = [(label, "$text-muted")]
        for step, rate in zip(shown, rates):
            eighths = round(8 * ROWS * len(step.emitted) / top) - 8 * row
            char = LEVELS[max(0, min(8, eighths))]
            dot = rate is not None and min(ROWS - 1, int(rate * ROWS)) == row
            parts.append(("•", "bold $text-warning") if dot else (char, "$text-success"))
        parts.append((RIGHT[row], "$text-warning"))
        lines.append(Content.assemble(*parts))
    first, last = str(shown[0].step), str(shown[-1].step)
    end = 4 + len(shown)  # the column after the last bar
    axis = f"    {first}"
    if end - len(last) > len(axis):
        axis = axis.ljust(end - len(last)) + last
    lines.append(Content.styled(axis + "  step", "$text-muted"))
    return lines


class AcceptancePlot(Static):
    def __init__(self, **kwargs):
        super().__init__("", **kwargs)
        self.steps: tuple[StepResult, ...] = ()

    def show(self, steps: tuple[StepResult, ...]) -> None:
        self.steps = steps
        self.redraw()

    def on_resize(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        title = Content.assemble(("▇", "$text-success"), (" tokens/step (left)  ", "$text-muted"),
                                 ("•", "bold $text-warning"), (" acceptance (right)", "$text-muted"))
        if not self.steps:
            self.update(Content("\n").join([title, Content.styled("  no steps yet", "$text-muted")]))
            return
        self.update(Content("\n").join([title, *plot_lines(self.steps, self.content_size.width or 40)]))
