"""The guided start: four short panels on what the screen shows. Shown on the first launch, and by `h` later.

Whether it was seen lives in a small file under the user's config folder (SPECDEC_CONFIG_DIR overrides it, as tests
do); SPECDEC_NO_GUIDE=1 skips it (the test suite sets it, so apps started by tests open on the main screen).
"""

from __future__ import annotations

import os
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

PANELS = (
    ("1/4  The drafter",
     "A small, cheap model (or a lookup in the text itself) guesses the next k tokens. Its guesses are the top row, "
     "'Draft block'. It is fast because it is small; it is often wrong for the same reason."),
    ("2/4  The verifier",
     "The big model whose output counts. In ONE forward pass it reads the context plus all k guesses and says what "
     "it would have written at each of the k + 1 places: the 'Verifier row'."),
    ("3/4  Why one pass checks k tokens",
     "A language model scores every position of its input at once, so checking k guesses costs about as much as "
     "writing one token. The longest run of guesses the verifier agrees with is kept; at the first disagreement the "
     "verifier's own token is taken and the rest of the block is discarded. Either way the text is what the "
     "verifier alone would write."),
    ("4/4  'Accepted' and 'speed-up'",
     "Accepted: a guess the verifier agreed with (✓). Each step gives the accepted guesses plus one token from the "
     "verifier, for one verifier pass. Speed-up: plain decoding time over this method's time; it is above 1 only "
     "when guesses are often right AND the drafter is much cheaper than the verifier. Press b for a speed check. "
     "The line 'What happened' under the rows tells each step in words; ? lists every key."),
)


def seen_file() -> Path:
    base = os.environ.get("SPECDEC_CONFIG_DIR") or os.path.join(
        os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config"), "specdec-tui")
    return Path(base) / "guide-seen"


def should_show() -> bool:
    """On the first launch only, unless SPECDEC_NO_GUIDE is set."""
    if os.environ.get("SPECDEC_NO_GUIDE"):
        return False
    return not seen_file().exists()


def mark_seen() -> None:
    try:
        path = seen_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("the guided start was shown; delete this file to see it at the next start (or press h)\n")
    except OSError:
        pass  # an unwritable config folder: the guide shows again next time, nothing worse


class GuideScreen(ModalScreen):
    BINDINGS = [
        Binding("right,enter,space,n", "turn(1)", "Next", id="guide.next"),
        Binding("left,backspace", "turn(-1)", "Back", id="guide.back"),
        Binding("escape,q,h", "close", "Skip", id="guide.close"),
    ]

    def __init__(self):
        super().__init__()
        self.page = 0

    def compose(self) -> ComposeResult:
        with Vertical(id="guide-body"):
            yield Static("", id="guide-text")
            yield Static("", id="guide-keys")

    def on_mount(self) -> None:
        self.show_page()

    def show_page(self) -> None:
        title, body = PANELS[self.page]
        body_widget = self.query_one("#guide-body")
        body_widget.border_title = f"Welcome to specdec-tui · {title}"
        self.query_one("#guide-text", Static).update(Content(body))
        last = self.page == len(PANELS) - 1
        keys = ("→/Enter: start" if last else "→/Enter: next") + (" · ←: back" if self.page else "") + " · Escape: skip"
        self.query_one("#guide-keys", Static).update(Content.styled(keys + " · h shows this again", "$text-muted"))

    def action_turn(self, delta: int) -> None:
        page = self.page + delta
        if page >= len(PANELS):
            self.action_close()
            return
        self.page = max(0, page)
        self.show_page()

    def action_close(self) -> None:
        mark_seen()
        self.dismiss()
