"""Cumulative numbers: acceptance, tokens per step and per verifier call, costs c and r, the theory, and a chart."""

from __future__ import annotations

from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

from engine import Stats, Theory

from ..narration import guess_line, path_acceptance, verdict_lines

from ..view_model import Snapshot
from .acceptance_plot import AcceptancePlot
from .accepted_histogram import AcceptedHistogram

CELL = 5  # width of one draft position in the per-position table


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _next_k(measured: int, following: int, steps: int) -> str:
    """After `+`/`-` the stats still describe the steps run so far: say when k changes."""
    return f" (k={following} from the next step)" if steps and following != measured else ""


def per_position_lines(stats: Stats, width: int, upto: int | None = None) -> list[Content]:
    """Acceptance at each draft position, 8 positions to a line pair (every column up to k = 8 on one pair); only
    up to the block size in force (`upto`), so positions of an earlier, larger k do not linger."""
    per_line = max(1, (width - 9) // CELL)
    rates = stats.per_position_acceptance[:upto] if upto else stats.per_position_acceptance
    if not rates:
        return []
    lines = [Content.styled("acceptance by draft position:", "$text-muted")]
    for start in range(0, len(rates), per_line):
        chunk = rates[start:start + per_line]
        lines.append(Content.assemble(("position ", "$text-muted"),
                                      "".join(str(start + i + 1).rjust(CELL - 1) + " " for i in range(len(chunk)))))
        lines.append(Content.assemble(("kept     ", "$text-muted"),
                                      ("".join(f"{100 * r:3.0f}%".rjust(CELL - 1) + " " for r in chunk), "bold")))
    return lines


def theory_lines(theory: Theory, timed: bool = False) -> list[Content]:
    """The formula with the measured numbers, then one verdict decided by one rule (the best k of the formula).

    `timed`: c and r come from `b`'s tight run; otherwise from the live steps, which idle between keys and read slow.
    """
    c, r, k = theory.cost_ratio, theory.verify_cost_ratio, theory.k
    source = "  (timed by b, no pauses)" if timed else "  (live steps; b: no pauses)"
    if r is None:
        costs = Content.assemble(("c=", "$text-muted"), (f"{c:.2f}", "bold"), (" per verify pass (r=1: not measured)", "$text-muted"))
    else:
        costs = Content.assemble(("c=", "$text-muted"), (f"{c:.2f}", "bold"), ("  r=", "$text-muted"), (f"{r:.2f}", "bold"),
                                 (source, "$text-muted"))
    lines = [
        costs,
        Content.assemble(("tok/call / (r + k c) = ", "$text-muted"), (f"{theory.measured_speedup:.2f}x", "bold")),
        Content.assemble(("E[tok/step] ", "$text-muted"), f"{theory.expected_tokens_per_step:.2f}",
                         ("  E[speed-up] ", "$text-muted"), f"{theory.expected_speedup:.2f}x"),
    ]
    if not theory.drafting_pays:
        lines.append(Content.styled("drafting cannot pay at any k (best k=0)", "$text-warning"))
    elif theory.best_k == k:
        lines.append(Content.styled(f"k={k} is the best block size by the formula", "$text-success"))
    else:
        lines.append(Content.styled(f"best k={theory.best_k} by the formula (now k={k})", "$text-success"))
    return lines


class StatsPanel(Vertical):
    """Plain view by default (acceptance, tokens per verifier call, a verdict in words); `m` toggles the expert
    view (c, r, the formula, per-position acceptance, a chart). Each view is a list of lines, so more lines (an
    automatic choice and its reason, a busy-CPU flag) slot in where they belong."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.border_title = "Stats (m: full stats)"
        self.chart = "histogram"
        self.expert = False
        self.snap: Snapshot | None = None
        self.following: int | None = None
        self.can_time = True  # `b` works (models loaded): a replay shows no hint for it

    def compose(self):
        yield Static("", id="stats-text")
        yield AcceptedHistogram(id="histogram")
        yield AcceptancePlot(id="plot")

    def toggle_expert(self) -> bool:
        self.expert = not self.expert
        if self.snap is not None:
            self.show(self.snap, self.following)
        return self.expert

    def show(self, snap: Snapshot, next_block_size: int | None = None, pending: dict | None = None) -> None:
        self.snap, self.following = snap, next_block_size
        s = snap.stats
        theory = snap.theory
        following = snap.block_size if next_block_size is None else next_block_size
        pending = pending or {}
        changing = _changing(snap, following, pending)
        auto = snap.config.block_size_schedule == "auto" and "block_size" not in pending
        if snap.steps and snap.steps[-1].planned_plain:
            k = 0  # auto chose not to draft (the theory line still speaks of the k it would draft)
        else:
            k = theory.k if s.steps else "auto" if auto else following
        head = Content.assemble(("steps ", "$text-muted"), (f"{s.steps}", "bold"), ("   k=", "$text-muted"), (f"{k}", "bold"))
        if s.steps and changing:
            head = Content.assemble(head, (f" ({changing} from the next step)", "$text-warning"))
        lines = [head, *auto_and_load_lines(snap)]
        lines += self.expert_lines(snap, theory, following, changing) if self.expert else self.plain_lines(snap, theory, changing)
        self.border_title = "Stats (m: plain view)" if self.expert else "Stats (m: full stats)"
        self.query_one("#stats-text", Static).update(Content("\n").join(lines))
        self.query_one(AcceptedHistogram).show(s, theory.k if s.steps else following)
        self.query_one(AcceptancePlot).show(snap.steps)
        self.query_one(AcceptedHistogram).display = self.expert and self.chart == "histogram"
        self.query_one(AcceptancePlot).display = self.expert and self.chart == "plot"

    def plain_lines(self, snap: Snapshot, theory: Theory, changing: str | None) -> list[Content]:
        s = snap.stats
        acceptance = path_acceptance(s)
        tree = bool(s.tree_steps)
        what = "of the path's depth" if tree else "of drafts"
        kept = "n/a" if acceptance is None else f"{100 * acceptance:.0f}%"
        lines = [
            Content.assemble(("accepted so far ", "$text-muted"), (kept, "bold"), (f" {what}", "$text-muted")),
            Content.assemble(("tokens per verifier call ", "$text-muted"), (f"{s.tokens_per_verifier_call:.2f}", "bold")),
            Content.styled("  (plain decoding: 1.00)", "$text-muted"),
        ]
        if tree:
            lines.append(Content.styled("tree: acceptance per accepted path", "$text-muted"))
        if changing:
            lines.append(Content.styled("verdict: after a step at the new settings", "$text-muted"))
        elif not tree:  # the chain formula does not describe a tree
            for text in verdict_lines(theory, acceptance, snap.timed):
                lines.append(Content(text))
        lines += _speed_check_lines(snap, self.can_time)
        return lines

    def expert_lines(self, snap: Snapshot, theory: Theory, following: int, changing: str | None) -> list[Content]:
        s = snap.stats
        acceptance = f"{100 * s.acceptance_rate:.1f}%" if s.drafted else "n/a"
        nodes = " nodes" if s.tree_steps else " drafts"
        lines = [
            Content.assemble(("acceptance ", "$text-muted"), (acceptance, "bold"), (f" ({s.accepted}/{s.drafted}{nodes})", "$text-muted")),
            Content.assemble(("tokens/step ", "$text-muted"), (f"{s.mean_tokens_per_step:.2f}", "bold"),
                             ("  per verifier call ", "$text-muted"), (f"{s.tokens_per_verifier_call:.2f}", "bold")),
            Content.assemble(("verifier calls ", "$text-muted"), (f"{s.verifier_calls}", "bold"),
                             (" → ", "$text-muted"), (f"{s.new_tokens}", "bold"), (" tokens", "$text-muted")),
            Content.assemble(("tokens/s ", "$text-muted"), (f"{s.tokens_per_s:.1f}", "bold"),
                             *((("  threads ", "$text-muted"), (f"{snap.threads}", "bold")) if snap.threads else ()),
                             *((("  bf16", "bold"),) if snap.config.forward == "bf16" else ())),
            Content.assemble(("draft ", "$text-muted"), f"{_ms(s.draft_ms_per_token)} ms/token",
                             ("  verify ", "$text-muted"), f"{_ms(s.verify_ms_per_step)} ms/pass"),
        ]
        if s.tree_steps:  # a tree's acceptance counts every node tried; the path says what a tree step bought
            path = path_acceptance(s)
            lines[1:1] = [Content.assemble(("per accepted path ", "$text-muted"),
                                           (f"{100 * path:.1f}%" if path is not None else "n/a", "bold"),
                                           (" of the depth", "$text-muted")),
                          Content.assemble(("tree ", "$text-muted"), (f"{s.nodes_per_step:.1f}", "bold"),
                                           (" nodes/step, path ", "$text-muted"), (f"{s.mean_accepted:.2f}", "bold"),
                                           (" kept/step", "$text-muted"))]
        if snap.plain_step_s:
            lines.append(Content.assemble(("plain decoding ", "$text-muted"), f"{1000 * snap.plain_step_s:.0f} ms/token"))
        if snap.plain_step_s and snap.tree_pass_s and snap.config.tree:  # what the branches cost, while in tree mode
            (tree_tokens, tree_s), (chain_tokens, chain_s) = snap.tree_pass_s
            lines.append(Content.assemble(("verify r ", "$text-muted"), (f"{tree_s / snap.plain_step_s:.2f}", "bold"),
                                          (f" ({tree_tokens} tok) vs chain ", "$text-muted"),
                                          (f"{chain_s / snap.plain_step_s:.2f}", "bold"), (f" ({chain_tokens})", "$text-muted")))
        lines += per_position_lines(s, self.content_size.width or 42, following)
        if changing:
            lines.append(Content.styled("formula: after a step at the new settings", "$text-muted"))
        elif theory.known and not snap.config.tree:  # the chain formula does not describe a tree
            lines += theory_lines(theory, timed=snap.timed)
        lines += _speed_check_lines(snap, self.can_time)
        return lines

    def toggle_chart(self) -> str:
        self.chart = "plot" if self.chart == "histogram" else "histogram"
        self.query_one(AcceptedHistogram).display = self.expert and self.chart == "histogram"
        self.query_one(AcceptancePlot).display = self.expert and self.chart == "plot"
        return self.chart


def auto_and_load_lines(snap: Snapshot) -> list[Content]:
    """The latest step's auto choice and why (-k auto), and whether the CPU was busy (its timings then mean little)."""
    latest = snap.steps[-1] if snap.steps else None
    lines = []
    if latest is not None and latest.plan:
        shape, _, why = latest.plan.partition("; ")
        lines += [Content.assemble((shape, "bold")), Content.styled(f"  {why}", "$text-muted")]
        if latest.guess is not None:
            lines.append(Content.styled(f"  {guess_line(latest.guess)}", "$text-muted"))
    if latest is not None and latest.cpu_busy:
        lines += [Content.styled("CPU busy: timings unreliable", "bold $text-warning"),
                  Content.styled(f"  {latest.cpu_busy}", "$text-muted")]
    return lines


def _changing(snap: Snapshot, following: int, pending: dict) -> str | None:
    """What the next step changes (k, chain/tree, modes): the stats so far describe the old settings."""
    if "tree" in pending and pending["tree"] != snap.config.tree:
        return f"tree {pending['tree']}" if pending["tree"] else "chain"
    if snap.steps and following != snap.theory.k and not snap.config.tree:
        return f"k={following}"
    for name in ("draft_mode", "verify"):
        if name in pending and pending[name] != getattr(snap.config, name):
            return f"{pending[name]} {'drafts' if name == 'draft_mode' else 'verify'}"
    return None


def _speed_check_lines(snap: Snapshot, can_time: bool = True) -> list[Content]:
    if not can_time:
        return []
    if snap.baseline_note:
        return [Content.styled("speed check (b):", "$text-muted"),
                *(Content("  " + part) for part in snap.baseline_note.split(" · "))]
    return [Content.styled("b: speed check against plain decoding", "$text-muted")]
