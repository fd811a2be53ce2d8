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
  The drafter proposes k tokens (draft block, with q = drafter probability).
  The verifier scores all k in ONE forward pass and predicts k + 1 tokens (verifier row, p).
  Greedy: keep the longest prefix where draft = verifier's choice; then take the verifier's
  token: the correction at the first mismatch, or a bonus token when all k were kept.
  Sampling: keep draft x with probability min(1, p(x)/q(x)) (u < p/q); on rejection resample
  from max(0, p - q). Either way the output is exactly what the verifier alone would produce.
  c = drafter cost per token / verifier cost per step; speed-up needs high acceptance and small c."""


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close", id="help.close")]

    def __init__(self, bindings: list[tuple[str, str]]):
        super().__init__()
        self.rows = bindings

    def compose(self) -> ComposeResult:
        lines = [Content.styled("Keys", "bold")]
        for key, description in self.rows:
            lines.append(Content.assemble((f"  {key:<10}", "bold $text-accent"), description))
        lines.append(Content(""))
        lines.append(Content(READING))
        lines.append(Content.styled("\nEscape or ? closes this help.", "$text-muted"))
        with VerticalScroll(id="help-body"):
            yield Static(Content("\n").join(lines))
