"""The `?` screen: every key, from the app's own binding list, and how to read the panels."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from engine import Decision

from ..chips import DECISION_SHORT, DECISION_STYLE, SOURCE_STYLE

READING = """\
How to read it (the line "What happened" under the rows tells each step in words)
  The drafter proposes k tokens: the draft block, with q = the drafter's probability
  of its token. Sampling verification uses the q the draft was drawn with:
  a greedy draft is a sure pick, so its q is 1 (row "q (rule)"), whatever its softmax.
  The verifier scores all k in ONE forward pass and predicts k + 1 tokens: the
  verifier row, with p = verifier probability.
  Greedy verification: keep the longest prefix where the draft equals the verifier's
  choice, then take the verifier's token: the correction at the first mismatch, or a
  bonus token when all k were kept. The columns after the first mismatch are struck
  through: verifier predictions after a rejected draft are discarded (they assumed it).
  Sampling verification: keep draft x when u < min(1, p(x)/q(x)), else it is
  REJECTED (u >= p/q) and the correction is drawn from the residual max(0, p - q),
  normalised (the inspector shows it). Either way the output is distributed exactly
  as the verifier alone would produce it.
  Costs, in units of one plain decoding step (the verifier's 1-token pass):
  c = drafter time per drafted token, r = verify pass over k + 1 tokens.
  A step costs r + k c, so speed-up = tokens per verifier call / (r + k c):
  it needs high acceptance and a small c. b runs a speed check: plain and speculative
  decoding, each timed without pauses. m shows these numbers in the stats (expert view).
  A tree (--tree, e toggles it) verifies several candidates in the same pass and
  keeps the branch the verifier agrees with. It pays where a pass over many tokens
  costs about one over 1: on a GPU, or with --forward bf16 on a CPU with AMX."""


def legend() -> list[Content]:
    """Every colour and word the rows use (the short words appear in narrow columns)."""
    lines = [Content.styled("Legend (chip, short word in narrow columns, meaning)", "bold")]
    for decision, (word, style) in DECISION_STYLE.items():
        chip = f" {word} "
        lines.append(Content.assemble("  ", (chip, style), " " * (14 - len(chip)), (f"{DECISION_SHORT[decision]:<7}", "bold"),
                                      (MEANING[decision], "$text-muted")))
    parts: list = ["  context: "]
    for source, style in SOURCE_STYLE.items():
        parts += [(source.value, style), "  "]
    parts.append(("newest step", "reverse"))
    lines.append(Content.assemble(*parts))
    return lines


MEANING = {
    Decision.ACCEPTED: "kept: equals the verifier's token (sampling: u < p/q)",
    Decision.REJECTED: "first refused draft (sampling: REJECTED, u ≥ p/q); replaced",
    Decision.BONUS: "all k kept: the verifier's extra token",
    Decision.PLAIN: "nothing drafted: the verifier decoded one token itself",
    Decision.NOT_REACHED: "after the block stopped: discarded (assumed a rejected draft)",
    Decision.STOPPED: "the text ended (EOS or token limit) before it",
}


def help_rows(bindings: list[Binding], key_display) -> list[tuple[str, str]]:
    """One row per binding with a tooltip; bindings that share a tooltip (+ and -, ← and →) share a row."""
    rows: list[tuple[str, str]] = []
    last = ("help", "quit")  # listed first in the footer (so they fit), last in the help
    for binding in sorted(bindings, key=lambda b: b.id in last):
        if not binding.tooltip:
            continue
        key = binding.key_display or key_display(binding)
        if rows and rows[-1][1] == binding.tooltip:
            rows[-1] = (f"{rows[-1][0]} / {key}", binding.tooltip)
        else:
            rows.append((key, binding.tooltip))
    return rows


class HelpBody(VerticalScroll):
    """The help's scrolling body: says "more below" in its bottom border until the end is in view."""

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self.refresh_hint()

    def on_resize(self) -> None:
        self.call_after_refresh(self.refresh_hint)

    def refresh_hint(self) -> None:
        more = self.max_scroll_y > 0 and self.scroll_y < self.max_scroll_y
        self.border_subtitle = "↓ more below (↓, PageDown, End)" if more else "Escape or ? closes"


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close", id="help.close")]

    def __init__(self, bindings: list[Binding]):
        super().__init__()
        self.bindings = bindings

    def compose(self) -> ComposeResult:
        # The plain explanation first (a newcomer reads from the top), then the keys and the legend.
        lines = [Content(READING), Content("")]
        lines.append(Content.styled("Keys", "bold"))
        for key, description in help_rows(self.bindings, self.app.get_key_display):
            lines.append(Content.assemble((f"  {key:<10}", "bold $text-accent"), description))
        lines.append(Content(""))
        lines += legend()
        lines.append(Content.styled("\nEscape or ? closes this help.", "$text-muted"))
        with HelpBody(id="help-body"):
            yield Static(Content("\n").join(lines), id="help-text")

    AUTO_FOCUS = "#help-body"  # ↓, PageDown and End scroll at once, no Tab needed

    def on_mount(self) -> None:
        self.call_after_refresh(self.query_one(HelpBody).refresh_hint)
