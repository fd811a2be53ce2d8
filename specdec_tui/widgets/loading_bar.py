"""Loading progress: the engine's message and fraction; when no news comes for a while, an honest
indeterminate bar with the time spent in that phase (dequantizing a GGUF reports no steps of its own)."""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Label, ProgressBar

from engine import shown

QUIET_S = 2.0  # no progress message for this long: the fraction no longer says anything


class LoadingBar(Horizontal):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.text = "loading"
        self.fraction = 0.0
        self.since = time.monotonic()

    def compose(self) -> ComposeResult:
        yield Label("loading", id="loading-label")
        yield ProgressBar(total=100, show_eta=False, id="loading-bar")

    def on_mount(self) -> None:
        self.set_interval(0.5, self.tick)

    def report(self, text: str, fraction: float) -> None:
        self.text, self.fraction, self.since = text, fraction, time.monotonic()
        self.query_one(Label).update(Content(shown(text, keep="")))  # paths and names are text, not markup
        self.query_one(ProgressBar).update(total=100, progress=100 * fraction)

    def tick(self) -> None:
        quiet = time.monotonic() - self.since
        if self.display and quiet >= QUIET_S and self.fraction < 1.0:
            self.query_one(Label).update(Content(f"{shown(self.text, keep='')} · {quiet:.0f} s"))
            self.query_one(ProgressBar).update(total=None)  # indeterminate: the phase has no steps to count
