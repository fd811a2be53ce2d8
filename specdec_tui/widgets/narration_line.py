"""What the shown step did, in plain words, right under the rows that show it (narration.narrate)."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from engine import StepResult, shown

from ..narration import narrate


class NarrationLine(Static):
    def __init__(self, **kwargs):
        super().__init__("", **kwargs)
        self.border_title = "What happened"

    def error(self, text: str) -> None:
        """A failure that stops the app from starting: the whole message (the status line would cut it)."""
        self.border_title = "Cannot start"
        self.add_class("-error")
        self.update(Content.assemble((shown(text, keep=""), "bold $text-error"), "\n",
                                     ("press q to quit", "bold")))

    def show(self, result: StepResult | None) -> None:
        self.remove_class("-error")
        if result is None:
            self.border_title = "What happened"
            self.update(Content.styled("press n: the drafter guesses k tokens, the verifier checks them all in one "
                                       "pass, and this line says what was kept and why", "$text-muted"))
            return
        self.border_title = f"What happened in step {result.step}"
        self.update(Content(narrate(result)))  # model text inside: a Content is never parsed as markup
