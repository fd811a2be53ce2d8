"""The footer, trimmed on small terminals to the keys a newcomer needs first (`?` lists every key)."""

from __future__ import annotations

from textual.widgets import Footer
from textual.widgets._footer import FooterKey

# Shown in the one-pane layout; the rest stay bound and are listed by `?` and the command palette.
ESSENTIAL = {"step", "play", "reset", "block_size(1)", "block_size(-1)", "next_pane", "help", "quit"}


class KeyFooter(Footer):
    def compose(self):
        trim = self.app.has_class("-compact")
        shown = 0
        for widget in super().compose():
            if trim and isinstance(widget, FooterKey) and widget.action not in ESSENTIAL:
                continue
            shown += 1
            yield widget
        if trim:
            self.styles.grid_size_columns = max(1, shown)
