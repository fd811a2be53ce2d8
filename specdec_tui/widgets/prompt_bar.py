"""The editable prompt: Enter restarts decoding from it, Escape returns the keys to the app."""

from __future__ import annotations

from textual.widgets import Input


class PromptBar(Input):
    def __init__(self, value: str, **kwargs):
        super().__init__(value=value, placeholder="Type a prompt and press Enter (Escape leaves the prompt)", **kwargs)
        self.border_title = "Prompt (p to edit, Enter to restart, Escape to leave)"
