"""One line under the panels: loading progress, a spinner while a step runs (held still while decoding is timed), and
messages (errors in red)."""

from __future__ import annotations

import time

from textual.content import Content
from textual.widgets import Static

from engine import shown

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class StatusBar(Static):
    def __init__(self, **kwargs):
        super().__init__("", **kwargs)
        self.message: Content = Content("")
        self.busy_label: str | None = None
        self.busy_since = 0.0
        self.queued = 0
        self.frame = 0
        self.still = False  # no spinner frames: the operation times decoding and a redraw would take CPU from it

    def on_mount(self) -> None:
        self.set_interval(0.1, self.tick)

    def tick(self) -> None:
        if self.busy_label is not None and not self.still:
            self.frame += 1
            self.redraw()

    def busy(self, label: str | None, queued: int = 0, still: bool = False) -> None:
        if label is not None and self.busy_label is None:
            self.busy_since = time.monotonic()
        self.busy_label = label
        self.queued = queued
        self.still = still
        self.redraw()

    def say(self, text: str, kind: str = "info") -> None:
        style = {"info": "$text", "error": "bold $text-error", "warning": "$text-warning", "ok": "$text-success"}[kind]
        prefix = {"error": "✗ ", "warning": "! ", "ok": "✓ ", "info": ""}[kind]
        self.message = Content.styled(prefix + shown(text, keep=""), style)  # messages quote paths and prompts
        self.redraw()

    def redraw(self) -> None:
        if self.busy_label is None:
            self.update(self.message)
            return
        elapsed = time.monotonic() - self.busy_since
        queued = f" · {self.queued} queued" if self.queued else ""
        if self.still:
            busy = f"⏱ {self.busy_label} (screen held still){queued}"
        else:
            busy = f"{SPINNER[self.frame % len(SPINNER)]} {self.busy_label} {elapsed:4.1f}s{queued}"
        self.update(Content.assemble((busy, "bold $text-accent"), "  ", self.message))
