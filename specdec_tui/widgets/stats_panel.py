"""Cumulative numbers: acceptance, tokens per step and per verifier call, per-position acceptance, theory."""

from __future__ import annotations

from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Sparkline, Static

from ..driver import Snapshot

BAR = "▏▎▍▌▋▊▉█"


def bar(fraction: float, width: int = 10) -> str:
    filled = fraction * width
    full = int(filled)
    rest = filled - full
    partial = BAR[int(rest * len(BAR))] if full < width and rest > 0.05 else ""
    return ("█" * full + partial).ljust(width, "·")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


class StatsPanel(Vertical):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.border_title = "Stats"

    def compose(self):
        yield Static("", id="stats-text")
        yield Static("accepted drafts per step:", id="spark-label")
        yield Sparkline([], id="spark")

    def show(self, snap: Snapshot) -> None:
        s = snap.stats
        lines = [
            Content.assemble(("steps ", "$text-muted"), (f"{s.steps}", "bold"), ("   k=", "$text-muted"), (f"{snap.block_size}", "bold")),
            Content.assemble(("acceptance ", "$text-muted"), (f"{100 * s.acceptance_rate:.1f}%", "bold"),
                             (f" ({s.accepted}/{s.drafted})", "$text-muted")),
            Content.assemble(("tokens/step ", "$text-muted"), (f"{s.mean_tokens_per_step:.2f}", "bold")),
            Content.assemble(("verifier calls ", "$text-muted"), (f"{s.verifier_calls}", "bold"),
                             (" → ", "$text-muted"), (f"{s.new_tokens}", "bold"), (" tokens", "$text-muted")),
            Content.assemble(("tokens/s ", "$text-muted"), (f"{s.tokens_per_s:.1f}", "bold"),
                             *((("   threads ", "$text-muted"), (f"{snap.threads}", "bold")) if snap.threads else ())),
            Content.assemble(("cost ", "$text-muted"), f"draft {_ms(s.draft_ms_per_token)} ms/token",
                             ("  ", ""), f"verify {_ms(s.verify_ms_per_step)} ms/step"),
            Content.styled("acceptance by draft position:", "$text-muted"),
        ]
        for i, rate in enumerate(s.per_position_acceptance):
            lines.append(Content.assemble((f" {i + 1:>2} ", "$text-muted"), (bar(rate), "$text-success"), f" {100 * rate:3.0f}%"))
        theory = snap.theory
        if theory.get("expected_speedup") is not None:
            lines.append(Content.assemble(("theory ", "$text-muted"), f"c={theory['cost_ratio']:.2f}  best k={theory['best_k']}"))
            lines.append(Content.assemble(
                ("E[tok/step] ", "$text-muted"), f"{theory['expected_tokens_per_step']:.2f}",
                ("  E[speed-up] ", "$text-muted"), f"{theory['expected_speedup']:.2f}x",
            ))
            if theory["cost_ratio"] > 0.5:
                lines.append(Content.styled("c near 1: the drafter costs about as much as the verifier, so no speed-up", "$text-warning"))
        if snap.baseline_note:
            lines.append(Content.assemble(("baseline ", "$text-muted"), (snap.baseline_note, "bold")))
        else:
            lines.append(Content.styled("press b to compare with plain decoding", "$text-muted"))
        self.query_one("#stats-text", Static).update(Content("\n").join(lines))
        self.query_one("#spark", Sparkline).data = [float(a) for a in s.accepted_per_step]
