"""The editable prompt, multi-line: Enter restarts decoding from it, Ctrl+J adds a line, Escape cancels the edit."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

TITLE = "Prompt (p edits: Enter restarts from it, Ctrl+J new line, Escape cancels)"

from engine import shown


class PromptBar(TextArea):
    BINDINGS = [
        Binding("enter", "submit", "Restart from this prompt", priority=True, id="prompt.submit"),
        Binding("ctrl+j", "newline", "New line", priority=True, id="prompt.newline"),
        Binding("escape", "cancel", "Cancel the edit", priority=True, id="prompt.cancel"),
    ]

    class Submitted(Message):
        def __init__(self, value: str):
            super().__init__()
            self.value = value

    class Cancelled(Message):
        """Escape: the app puts back the prompt that is running."""

    def __init__(self, value: str, **kwargs):
        super().__init__(value, soft_wrap=True, show_line_numbers=False, highlight_cursor_line=False,
                         placeholder="Type a prompt and press Enter (Escape cancels)", **kwargs)
        self.border_title = TITLE

    @property
    def value(self) -> str:
        return self.text

    @value.setter
    def value(self, text: str) -> None:
        self.load_text(text)

    def action_submit(self) -> None:
        self.post_message(self.Submitted(self.text))

    def action_newline(self) -> None:
        self.insert("\n")

    def action_cancel(self) -> None:
        self.post_message(self.Cancelled())
