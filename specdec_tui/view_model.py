"""What the screen shows, as plain values (no textual): the run after an operation, and the view over it.

The widgets are updated from `ViewModel.shown()`; browsing an earlier step, the selected position and settings
that wait for the next step live here, so they are unit-tested without an app.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from engine import MAX_BLOCK_SIZE, RunSummary, SpecConfig, SpeedCheck, Stats, StepResult, Theory, measured_block_size

DEFAULT_TREE = "3,2,1,1"  # what `e` switches to when no --tree shape was given


@dataclass(frozen=True)
class Snapshot:
    """Everything the screen shows about the run after an operation, handed from the worker to the UI."""

    prompt_pieces: tuple[str, ...]
    steps: tuple[StepResult, ...]
    stats: Stats
    finished: str | None
    block_size: int  # k of the next step
    config: SpecConfig
    baseline_note: str | None = None
    warnings: tuple[str, ...] = ()
    plain_step_s: float | None = None  # one plain decoding step, measured: the unit of c and r
    threads: int | None = None  # torch threads decoding uses (None: not recorded, in an older trace)
    speed_check: SpeedCheck | None = None  # what `b` timed: the same run without pauses, and plain decoding
    # In tree mode: (tokens, seconds) of a verify pass over the tree's nodes + 1, then over its chain's depth + 1.
    tree_pass_s: tuple[tuple[int, float], ...] = ()

    @property
    def summary(self) -> RunSummary:
        return RunSummary.of(self.steps, self.stats, self.config.replace(block_size=self.block_size), self.finished,
                             plain_step_s=self.plain_step_s)

    @property
    def timed(self) -> bool:
        """c and r come from `b`'s speed check: live steps idle between keys and read slower than a tight loop."""
        check = self.speed_check
        return check is not None and bool(check.stats.steps) and bool(check.plain_step_s)

    @property
    def theory(self) -> Theory:
        if self.timed:
            check = self.speed_check
            return Theory.of(check.stats, measured_block_size(self.steps, self.block_size), check.plain_step_s)
        return self.summary.theory

    @property
    def latest(self) -> StepResult | None:
        return self.steps[-1] if self.steps else None

    def upto(self, count: int) -> "Snapshot":
        """The run as it was after its first `count` steps (count >= 1): what `[` shows."""
        steps = self.steps[:count]
        if len(steps) == len(self.steps):
            return self
        return replace(self, steps=steps, stats=Stats.from_steps(steps), finished=None, baseline_note=None,
                       speed_check=None, block_size=steps[-1].block_size)

    def cleared(self, prompt_pieces: tuple[str, ...] | None = None) -> "Snapshot":
        """The run just after a reset (shown at once; the worker confirms it with the tokenized prompt)."""
        return replace(self, prompt_pieces=self.prompt_pieces if prompt_pieces is None else prompt_pieces,
                       steps=(), stats=Stats(), finished=None, baseline_note=None, speed_check=None)


@dataclass(frozen=True)
class Selection:
    """What the rows and the inspector show of the browsed step."""

    step: StepResult | None
    column: int  # the chain column highlighted in the rows; -1 for a tree node off the accepted path
    node: int | None = None  # the tree node inspected (a tree step walks its nodes with ←/→)


@dataclass
class ViewModel:
    """The latest snapshot, which step is browsed, which position is inspected, and settings for the next step."""

    snap: Snapshot | None = None
    view_index: int | None = None  # an earlier step being browsed (0-based); None = the latest
    selected: int = 0  # position shown in the inspector
    pending: dict = field(default_factory=dict)
    tree_shape: str = DEFAULT_TREE  # the last tree shape used: what `e` switches back to

    def show(self, snap: Snapshot) -> None:
        """A new state from the engine: always shows the latest step."""
        self.snap = snap
        self.view_index = None

    def shown(self) -> Snapshot | None:
        if self.snap is None or self.view_index is None:
            return self.snap
        return self.snap.upto(self.view_index + 1)

    @property
    def has_steps(self) -> bool:
        return bool(self.snap and self.snap.steps)

    @property
    def finished(self) -> str | None:
        return self.snap.finished if self.snap else None

    def browse(self, delta: int) -> int | None:
        """Move the browsed step; returns the browsed index, None when back at the latest."""
        last = len(self.snap.steps) - 1
        current = last if self.view_index is None else self.view_index
        index = max(0, min(last, current + delta))
        self.view_index = None if index == last else index
        return self.view_index

    def select(self, index: int) -> int:
        """The inspected position of a chain step, or node (in drawn order) of a tree step."""
        shown = self.shown()
        latest = shown.latest if shown else None
        if latest is None:
            columns = 1
        elif latest.tree is not None and latest.tree.nodes:
            columns = len(latest.tree.nodes)
        else:
            columns = len(latest.positions)
        self.selected = max(0, min(columns - 1, index))
        return self.selected

    def selection(self) -> Selection:
        """The selected position as the rows see it: on a tree step, the node and its chain column (if on the path)."""
        shown = self.shown()
        latest = shown.latest if shown is not None else None
        column = self.select(self.selected)
        if latest is None or latest.tree is None or not latest.tree.nodes:
            return Selection(latest, column)
        node = latest.tree.drawn_order()[column]
        return Selection(latest, latest.tree.path.index(node) if node in latest.tree.path else -1, node)

    def click(self, column: int) -> None:
        """A click on a chip column; on a tree step the column is a node of the accepted path."""
        shown = self.shown()
        tree = shown.latest.tree if shown is not None and shown.latest is not None else None
        if tree is not None and tree.nodes and column < len(tree.path):
            self.select(tree.drawn_order().index(tree.path[column]))
        else:
            self.select(column)

    # -- settings that apply from the next step ---------------------------------------------------------------

    @property
    def config(self) -> SpecConfig:
        config = self.snap.config if self.snap else SpecConfig()
        return config.replace(**self.pending) if self.pending else config

    @property
    def next_block_size(self) -> int:
        return self.pending.get("block_size", self.snap.block_size if self.snap else SpecConfig().block_size)

    def take_pending(self) -> dict:
        changes, self.pending = self.pending, {}
        return changes

    def change_block_size(self, delta: int) -> tuple[str, bool]:
        """k for the next step, moved by `delta`; a k chosen by hand turns auto off. (What to say, whether refused.)"""
        current = self.next_block_size
        wanted = current + delta
        if not 1 <= wanted <= MAX_BLOCK_SIZE:
            return f"block size stays {current}: it must be between 1 and {MAX_BLOCK_SIZE}", True
        config = self.config  # read before changing: a half-changed config (--tree auto, a fixed k) is invalid
        changes = {"block_size": wanted}
        if config.block_size_schedule == "auto":
            changes["block_size_schedule"] = "constant"
            if config.tree == "auto":
                changes["tree"] = None
        self.pending.update(changes)
        fixed = " (fixed: auto off)" if len(changes) > 1 else ""
        return f"block size k={wanted} from the next step{fixed}", False

    def toggle(self, name: str, values: tuple) -> object:
        """The next of `values` for setting `name`, from the next step; returns it."""
        current = getattr(self.config, name)
        new = values[(values.index(current) + 1) % len(values)] if current in values else values[0]
        self.pending[name] = new
        return new

    def toggle_tree(self) -> str | None:
        """Chain <-> tree; the tree is the last shape used (the command line's, else DEFAULT_TREE). Returns the new
        shape, None for a chain. `--tree auto` needs `-k auto`: with a fixed k, `e` gives a fixed tree."""
        self.tree_shape = self.config.tree or self.tree_shape
        if self.tree_shape == "auto" and self.config.block_size_schedule != "auto":
            self.tree_shape = DEFAULT_TREE
        return self.toggle("tree", (None, self.tree_shape))
