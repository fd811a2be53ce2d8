"""The editable prompt, multi-line: Enter restarts decoding from it, Ctrl+J adds a line, Escape cancels the edit."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

from engine import shown

TITLE = "Prompt (p edits: Enter restarts from it, Ctrl+J new line, Escape cancels)"


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
        self.raw = value  # the prompt exactly as given; the editor shows visible_prompt(raw)
        super().__init__(visible_prompt(value), soft_wrap=True, show_line_numbers=False, highlight_cursor_line=False,
                         placeholder="Type a prompt and press Enter (Escape cancels)", **kwargs)
        self.border_title = TITLE

    @property
    def value(self) -> str:
        """The prompt: exactly as given while unedited, else what the user sees and typed."""
        return self.raw if self.text == visible_prompt(self.raw) else self.text

    @value.setter
    def value(self, text: str) -> None:
        self.raw = text
        self.load_text(visible_prompt(text))

    def action_submit(self) -> None:
        self.post_message(self.Submitted(self.value))

    def action_newline(self) -> None:
        self.insert("\n")

    def action_cancel(self) -> None:
        self.post_message(self.Cancelled())


def visible_prompt(text: str) -> str:
    """What the editor holds: the prompt with control characters as visible symbols (a TextArea draws them raw,
    and a terminal would obey them). Only a prompt from --prompt or a trace can hold them; the running prompt
    itself is kept exactly, and an edit submits what the user sees."""
    return shown(text, keep="\n\t")
