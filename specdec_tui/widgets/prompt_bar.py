"""The editable prompt: Enter restarts decoding from it, Escape returns the keys to the app."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Input

from engine.safe_text import shown


class PromptBar(Input):
    def __init__(self, value: str, **kwargs):
        super().__init__(value=value, placeholder="Type a prompt and press Enter (Escape leaves the prompt)", **kwargs)
        self.border_title = "Prompt (p to edit, Enter to restart, Escape to leave)"

    @property
    def _value(self) -> Text:
        # The value stays the user's exact prompt; only its drawing shows control characters as symbols
        # (one for one, so the cursor still lines up). Input draws the raw value otherwise.
        return Text(shown(self.value, keep=""), no_wrap=True, overflow="ignore", end="")
