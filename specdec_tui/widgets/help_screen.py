"""The `?` screen: every key, from the app's own binding list, and how to read the panels."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

READING = """\
How to read it
  The drafter proposes k tokens: the draft block, with q = drafter probability.
  The verifier scores all k in ONE forward pass and predicts k + 1 tokens: the
  verifier row, with p = verifier probability.
  Greedy: keep the longest prefix where the draft equals the verifier's choice, then
  take the verifier's token: the correction at the first mismatch, or a bonus token
  when all k were kept.
  Sampling: keep draft x when u < min(1, p(x)/q(x)); on rejection resample from
  max(0, p - q). Either way the output is what the verifier alone would produce.
  c = drafter cost per token / verifier cost per step: a speed-up needs high
  acceptance and a small c."""


def help_rows(bindings: list[Binding], key_display) -> list[tuple[str, str]]:
    """One row per binding with a tooltip; bindings that share a tooltip (+ and -, ← and →) share a row."""
    rows: list[tuple[str, str]] = []
    for binding in bindings:
        if not binding.tooltip:
            continue
        key = binding.key_display or key_display(binding)
        if rows and rows[-1][1] == binding.tooltip:
            rows[-1] = (f"{rows[-1][0]} / {key}", binding.tooltip)
        else:
            rows.append((key, binding.tooltip))
    return rows


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close", id="help.close")]

    def __init__(self, bindings: list[Binding]):
        super().__init__()
        self.bindings = bindings

    def compose(self) -> ComposeResult:
        lines = [Content.styled("Keys", "bold")]
        for key, description in help_rows(self.bindings, self.app.get_key_display):
            lines.append(Content.assemble((f"  {key:<10}", "bold $text-accent"), description))
        lines.append(Content(""))
        lines.append(Content(READING))
        lines.append(Content.styled("\nEscape or ? closes this help.", "$text-muted"))
        with VerticalScroll(id="help-body"):
            yield Static(Content("\n").join(lines))
