"""The Textual app: bindings, layout and handlers. Model work runs in one thread worker at a time.

What runs when is decided by `scheduler.Scheduler` (queue, epoch, busy); operations are typed values
(`operations.py`) whose outcomes come back as typed messages (`messages.py`); what the panels show is
`view_model.ViewModel`. None of those three import textual.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Iterable

from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Header, Static

from engine import DEFAULT_PROMPT, DRAFT_MODES, MAX_BLOCK_SIZE, VERIFY_MODES, EngineError, SpecConfig
from engine import shown as safe_text

from . import operations as ops
from .driver import Driver, EngineDriver, ReplayDriver
from .messages import (BaselineDone, DrafterSwitched, Loaded, LoadProgress, OperationFailed, Outcome, PositionClicked,
                       ResetDone, Saved, Stepped, outcome)
from .scheduler import Scheduler, Ticket
from .view_model import Snapshot, ViewModel
from .widgets.comparison_row import ComparisonRow
from .widgets.context_view import ContextView
from .widgets.draft_row import DraftRow
from .widgets.guide_screen import GuideScreen, should_show
from .widgets.help_screen import HelpScreen
from .widgets.key_footer import KeyFooter
from .widgets.loading_bar import LoadingBar
from .widgets.narration_line import NarrationLine
from .widgets.position_inspector import PositionInspector
from .widgets.prompt_bar import PromptBar
from .widgets.stats_panel import StatsPanel
from .widgets.status_bar import StatusBar
from .widgets.step_log import StepLog
from .widgets.tree_view import TreeView
from .widgets.verifier_row import VerifierRow

PLAY_DELAYS = (0.0, 0.3, 1.0)  # seconds between auto-play steps; `t` cycles through them
COMPACT_BELOW = (100, 32)  # width, height: below either, the one-pane layout
WIDE_FROM = (180, 45)
SMALLEST = (60, 18)  # below this no layout can show a step: a notice instead
PANES = ("context", "stats", "log", "position")  # what `w` cycles through in the one-pane layout
CONFIGURING = {"block_size", "toggle_draft", "toggle_verify", "toggle_tree", "next_drafter", "focus_prompt"}  # need can_configure
DEFAULT_TREE = "3,2,1,1"  # what `e` switches to when no --tree shape was given


class SpecDecApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "specdec-tui"
    COMMAND_PALETTE_BINDING = "ctrl+p"
    AUTO_FOCUS = None  # keys belong to the app until the user edits the prompt
    # The tooltip is the line the help screen shows for the key.
    BINDINGS = [
        Binding("n", "step", "Step", id="step", tooltip="one speculative step (draft -> verify -> accept)"),
        Binding("space", "play", "Play", id="play", tooltip="play / pause auto-stepping"),
        Binding("t", "speed", "Play speed", show=False, id="speed",
                tooltip="auto-play speed: no pause, 0.3 s, 1 s between steps"),
        Binding("r", "reset", "Reset", id="reset", tooltip="reset to the prompt"),
        Binding("plus,equals_sign", "block_size(1)", "k+1", id="block_size.up", key_display="+",
                tooltip=f"block size k (drafted tokens per step), 1..{MAX_BLOCK_SIZE}"),
        Binding("minus", "block_size(-1)", "k-1", id="block_size.down", key_display="-",
                tooltip=f"block size k (drafted tokens per step), 1..{MAX_BLOCK_SIZE}"),
        Binding("w", "next_pane", "Pane", id="pane",
                tooltip="small terminals: next pane under the chips (context, stats, log, position)"),
        Binding("question_mark", "help", "Help", id="help", key_display="?", tooltip="this help (every key)"),
        Binding("h", "guide", "Guide", show=False, id="guide",
                tooltip="the guided start again: drafter, verifier, one pass for k tokens, accepted and speed-up"),
        Binding("q", "quit", "Quit", id="quit", tooltip="quit"),
        Binding("ctrl+p", "command_palette", "Commands", show=False, id="palette", key_display="Ctrl+P",
                tooltip="command palette: search every action by name"),
        Binding("g", "toggle_draft", "Draft", id="draft_mode",
                tooltip="drafting: greedy <-> sampled (temperature, top-k, top-p, penalties)"),
        Binding("v", "toggle_verify", "Verify", id="verify_mode", tooltip="verification: greedy <-> speculative sampling"),
        Binding("d", "next_drafter", "Drafter", id="drafter",
                tooltip="next drafter: the one you chose, ngram+head (lookup, else the head), head (the trained draft head), same, ngram, early-exit (half the layers); restarts"),
        Binding("e", "toggle_tree", "Tree", show=False, id="tree",
                tooltip="chain <-> tree drafts (your --tree shape, else 3,2,1,1) with the same drafter"),
        Binding("b", "baseline", "Speed check", id="baseline",
                tooltip="speed check: plain and speculative decoding of this prompt, each timed without pauses: identical output? real speed-up?"),
        Binding("m", "toggle_stats", "More stats", show=False, id="stats",
                tooltip="stats: plain view (acceptance, tokens per verifier call, a verdict) <-> full stats (c, r, formula, chart)"),
        Binding("s", "save", "Save", id="save", tooltip="save the steps as a JSON Lines trace (replay with --replay FILE)"),
        Binding("left", "select(-1)", "Position", show=False, id="position.left", key_display="←",
                tooltip="pick a position: the drafter's and verifier's top-5 side by side"),
        Binding("right", "select(1)", "Position", show=False, id="position.right", key_display="→",
                tooltip="pick a position: the drafter's and verifier's top-5 side by side"),
        Binding("left_square_bracket", "browse(-1)", "Earlier step", show=False, id="browse.earlier", key_display="[",
                tooltip="browse earlier steps (view only; n continues from the latest)"),
        Binding("right_square_bracket", "browse(1)", "Later step", show=False, id="browse.later", key_display="]",
                tooltip="back toward the latest step while browsing (view only; n continues from the latest)"),
        Binding("a", "toggle_chart", "Chart", show=False, id="chart",
                tooltip="stats chart: accepted-drafts histogram <-> acceptance over the steps"),
        Binding("p", "focus_prompt", "Prompt", id="prompt",
                tooltip="edit the prompt: Enter restarts from it, Ctrl+J adds a line, Escape cancels the edit"),
        Binding("tab,shift+tab", "tab", "Tab", show=False, priority=True, id="tab"),
        Binding("pagedown", "scroll_pane(1)", "Scroll down", show=False, id="scroll.down", key_display="PgDn",
                tooltip="scroll the stats (small terminals: the pane shown under the chips)"),
        Binding("pageup", "scroll_pane(-1)", "Scroll up", show=False, id="scroll.up", key_display="PgUp",
                tooltip="scroll the stats (small terminals: the pane shown under the chips)"),
        Binding("x", "screenshot", "Picture", show=False, id="screenshot",
                tooltip="save a picture of the screen (SVG, named like a saved trace)"),
    ]

    def __init__(self, config: SpecConfig | None = None, prompt: str = DEFAULT_PROMPT, replay: str | None = None,
                 driver: Driver | None = None):
        super().__init__()
        self.driver: Driver = driver or (ReplayDriver(replay) if replay else EngineDriver(config or SpecConfig()))
        self.prompt_text = prompt
        self.scheduler = Scheduler()
        self.view = ViewModel()
        self.playing = False
        self.delay_index = 1
        self.pane = PANES[0]
        self.tree_shape = DEFAULT_TREE  # the last tree shape used, for `e`
        self.load_failed = False  # the first load failed: every key but q says so

    # -- layout -------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield PromptBar(self.prompt_text, id="prompt-bar")
        yield LoadingBar(id="loading")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield DraftRow(id="draft-row")
                yield VerifierRow(id="verifier-row")
                yield ComparisonRow(id="comparison-row")
                yield TreeView(id="tree-view")
                yield NarrationLine(id="narration")
                yield ContextView(id="context")
            with Vertical(id="right"):
                yield StatsPanel(id="stats")
        with Horizontal(id="bottom"):
            yield StepLog(id="step-log")
            yield PositionInspector(id="inspector")
        yield Static(f"terminal too small: specdec-tui needs at least {SMALLEST[0]} x {SMALLEST[1]}", id="too-small")
        yield StatusBar(id="status")
        yield KeyFooter(show_command_palette=False)  # Ctrl+P is in the help; the footer keeps its room for keys

    def on_mount(self) -> None:
        self.query_one(StepLog).can_focus = False
        self.query_one(StatsPanel).can_time = self.driver.has_models  # a replay has no speed check: no hint for b
        self.query_one(PromptBar).cursor_blink = False if self.is_headless else True
        self.sub_title = safe_text(self.driver.title, keep="")
        self.query_one("#loading").add_class("-visible")
        self.status.say("loading models in the background…")
        self.apply_size_class(self.size.width, self.size.height)
        self.run_operation(self.scheduler.start(ops.Load(self.prompt_text)))
        if should_show():  # the first launch: the models load behind the guide
            self.push_screen(GuideScreen())

    def on_resize(self, event) -> None:
        self.apply_size_class(event.size.width, event.size.height)

    def apply_size_class(self, width: int, height: int) -> None:
        compact = width < COMPACT_BELOW[0] or height < COMPACT_BELOW[1]
        self.set_class(compact, "-compact")
        self.set_class(width >= WIDE_FROM[0] and height >= WIDE_FROM[1], "-wide")
        self.set_class(width < SMALLEST[0] or height < SMALLEST[1], "-too-small")
        self.query_one(KeyFooter).compact = compact
        self.refresh_bindings()  # the footer recomposes: `w` and the trimmed key list belong to the one-pane layout

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    @property
    def snap(self) -> Snapshot | None:
        return self.view.snap

    # -- running model work -------------------------------------------------------------------------------

    def run_operation(self, ticket: Ticket) -> None:
        """The one worker runner: runs the ticket's operation in a thread and posts its typed outcome."""
        self.status.busy(ticket.operation.label, self.scheduler.queued_steps, still=ticket.operation.still)
        progress = lambda text, fraction: self.post_message(LoadProgress(text, fraction))  # noqa: E731

        def work() -> None:
            try:
                value = ticket.operation.run(self.driver, progress)
            except Exception as error:  # every failure becomes a message on screen, never a traceback
                value = error
            self.post_message(outcome(ticket, value))

        self.run_worker(work, thread=True, group="model", name=type(ticket.operation).__name__, exit_on_error=False)

    def pump(self) -> None:
        """Start the next queued operation, or schedule the next auto-play step."""
        operation = self.scheduler.next(finished=bool(self.view.finished))
        if isinstance(operation, ops.Step):
            operation = ops.Step(self.view.take_pending())  # settings changed while it waited apply now
        if operation is not None:
            self.run_operation(self.scheduler.start(operation))
        elif self.playing and not self.scheduler.busy and not self.view.finished:
            self.set_timer(max(PLAY_DELAYS[self.delay_index], 0.01), self.auto_step)  # a 0 s timer divides by zero

    def auto_step(self) -> None:
        if self.playing and not self.scheduler.busy and not self.scheduler.queue:
            self.enqueue(ops.Step())

    def enqueue(self, operation: ops.Operation) -> None:
        self.scheduler.submit(operation)
        if self.scheduler.busy:
            self.status.busy(self.status.busy_label, self.scheduler.queued_steps, still=self.status.still)
        self.pump()

    def current(self, message: Outcome) -> bool:
        """False for the outcome of an operation voided by a restart: it is dropped, never shown."""
        return message.ticket.epoch == self.scheduler.epoch

    @on(Outcome)
    def operation_ended(self, message: Outcome) -> None:
        # Runs after the specific handler below (textual dispatches a subclass's handlers first).
        self.scheduler.finish(message.ticket)
        self.status.busy(None)
        self.pump()

    def on_load_progress(self, message: LoadProgress) -> None:
        self.query_one(LoadingBar).report(message.text, message.fraction)

    @on(Loaded)
    def loaded(self, message: Loaded) -> None:
        self.scheduler.ready = True
        self.query_one("#loading").remove_class("-visible")
        self.show(message.value)
        if not self.driver.can_configure:
            bar = self.query_one(PromptBar)
            bar.value = self.driver.prompt
            bar.border_title = "Prompt (recorded in the trace)"  # p does not edit a replay: no hint for it
            bar.can_focus = False
        hint = "models ready" if self.driver.has_models else "replay loaded"
        notes = " · ".join(self.driver.warnings)
        if notes:  # e.g. the model cache could not be written: said once, where the user looks
            self.status.say(f"{notes} · {hint}: press n to step", "warning")
        else:
            self.status.say(f"{hint}: press n to step, space to play, ? for help", "ok")
        for warning in message.value.warnings:  # text from the trace: shown literally
            self.notify(safe_text(warning, keep=""), title="trace", severity="warning", timeout=10, markup=False)

    @on(Stepped)
    def stepped(self, message: Stepped) -> None:
        if not self.current(message):
            return
        result, snap = message.value
        if snap.finished:
            self.playing = False  # before show(): the header must not say "playing" after the end
            self.scheduler.drop_steps()
        self.show(snap)
        if snap.finished:
            again = "press r to start again, p to edit the prompt" if self.driver.can_configure else "press r to replay it"
            self.status.say(f"finished ({snap.finished.replace('_', ' ')}): {again}", "ok")
        else:
            new = len(result.emitted)
            busy = " · CPU busy: timings unreliable" if result.cpu_busy else ""
            self.status.say(f"step {result.step}: kept {result.accepted}/{result.drafted} drafts, +{new} token{'s' if new != 1 else ''}"
                            f"{busy}", "warning" if busy else "info")

    @on(ResetDone)
    def reset_done(self, message: ResetDone) -> None:
        if self.current(message):
            self.show(message.value)
            self.status.say("reset: press n to step", "ok")

    @on(DrafterSwitched)
    def drafter_switched(self, message: DrafterSwitched) -> None:
        if self.current(message):
            self.show(message.value)
            self.status.say(f"drafter {message.value.config.drafter}: press n to step", "ok")

    @on(BaselineDone)
    def baseline_done(self, message: BaselineDone) -> None:
        if self.current(message):
            self.show(message.value)
            # The first parts fit the status line; the stats panel shows every part on its own line.
            parts = (message.value.baseline_note or "done").split(" · ")
            more = " (all of it in the stats)" if len(parts) > 3 else ""
            self.status.say(f"speed check: {' · '.join(parts[:3])}{more}", "ok")

    @on(Saved)
    def saved(self, message: Saved) -> None:
        self.status.say(f"trace saved to {message.value}", "ok")

    @on(OperationFailed)
    def operation_failed(self, message: OperationFailed) -> None:
        if not self.current(message):
            return
        error = message.value
        self.playing = False
        text = str(error) if isinstance(error, EngineError) else f"{type(error).__name__}: {error}"
        if isinstance(message.ticket.operation, ops.Load):
            self.query_one("#loading").remove_class("-visible")
            if not self.driver.loaded:
                self.load_failed = True
                self.query_one(NarrationLine).error(text)  # the whole message, where the eye is
                self.status.say("cannot start: the message is above; press q to quit", "error")
                return
            self.scheduler.ready = True  # models loaded, only the prompt was refused: edit it and press Enter
        self.scheduler.drop_steps()
        self.status.say(text, "error")

    # -- showing ------------------------------------------------------------------------------------------

    def show(self, snap: Snapshot) -> None:
        self.view.show(snap)
        self.render_view()

    def render_view(self) -> None:
        shown = self.view.shown()
        latest = shown.latest
        selected = self.view.select(self.view.selected)
        node = None
        self.set_class(latest is not None and latest.tree is not None, "-tree-step")
        if latest is not None and latest.tree is not None and latest.tree.nodes:  # ←/→ walk the tree's nodes
            node = latest.tree.drawn_order()[selected]
            selected = latest.tree.path.index(node) if node in latest.tree.path else -1  # its chain column, if any
        self.query_one(DraftRow).show(latest, selected)
        self.query_one(VerifierRow).show(latest, selected)
        self.query_one(ComparisonRow).show(latest, selected)
        if node is None:
            self.query_one(PositionInspector).show(latest, selected)
        else:
            self.query_one(PositionInspector).show_node(latest, node)
        self.query_one(TreeView).show(latest, node)
        self.query_one(NarrationLine).show(latest)
        self.query_one(ContextView).show(shown.prompt_pieces, shown.steps, shown.finished)
        self.query_one(StatsPanel).show(shown, self.view.next_block_size, self.view.pending)
        self.query_one(StepLog).show(shown.steps, browsing=self.view.view_index is not None)
        self.update_header()

    def update_header(self) -> None:
        if not self.snap:
            return
        c, k = self.view.config, self.view.next_block_size
        play = "▶ playing · " if self.playing else ""  # first, so a narrow header never cuts it off
        auto = self.view.pending.get("block_size_schedule", c.block_size_schedule) == "auto"
        shape = f"tree {c.tree}" if c.tree and c.tree != "auto" else "k=auto" if auto else f"k={k}"
        self.sub_title = safe_text(f"{play}{shape} · {c.draft_mode} drafts · {c.verify} verify"
                                   f"{' · k adaptive' if c.block_size_schedule == 'heuristic' else ''} · {self.driver.title}", keep="")

    # -- actions ------------------------------------------------------------------------------------------

    def not_ready(self) -> bool:
        if self.load_failed:
            self.status.say("cannot start: the models did not load (the message is above); press q to quit", "error")
            return True
        if not self.scheduler.ready:
            self.status.say("still loading: this key works once the models are ready (n and space are kept "
                            "for then)", "warning")
            return True
        return False

    def refusal(self, action: str) -> str | None:
        """Why this driver cannot do `action`, or None. Such keys are hidden from the footer and the help."""
        if action in CONFIGURING and not self.driver.can_configure:
            return "this is a replay: its settings and prompt are fixed by the trace"
        if action == "baseline" and not self.driver.has_models:
            return "the speed check needs the models; a replay has none (run without --replay)"
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next_pane":
            return self.has_class("-compact")
        return self.refusal(action) is None

    def on_key(self, event) -> None:
        """A hidden key still answers, so a replay never ignores a key silently."""
        if self.focused is not None:
            return
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            reason = self.refusal(binding.action.partition("(")[0])
            if reason:
                self.status.say(reason, "warning")

    def action_select(self, delta: int) -> None:
        if self.view.has_steps:
            self.view.select(self.view.selected + delta)
            self.render_view()

    def on_position_clicked(self, message: PositionClicked) -> None:
        shown = self.view.shown()
        tree = shown.latest.tree if shown is not None and shown.latest is not None else None
        if tree is not None and message.index < len(tree.path):  # a chain column of a tree step: its path node
            self.view.select(tree.drawn_order().index(tree.path[message.index]))
        else:
            self.view.select(message.index)
        self.render_view()

    def action_browse(self, delta: int) -> None:
        if not self.view.has_steps:
            self.status.say("no steps yet: press n first", "warning")
            return
        index, count = self.view.browse(delta), len(self.snap.steps)
        if index is None:
            self.status.say(f"latest step ({count})")
        else:
            self.status.say(f"viewing step {index + 1} of {count} (] later, n continues from the latest)")
        self.render_view()

    def loading(self) -> bool:
        """Still loading (not failed): n and space are kept and run once the models are ready."""
        return not self.scheduler.ready and not self.load_failed

    def action_step(self) -> None:
        if self.loading():
            self.scheduler.submit(ops.Step())
            self.status.say(f"still loading: {self.scheduler.queued_steps} step(s) queued, they run once the models "
                            "are ready", "warning")
            return
        if self.not_ready():
            return
        if self.view.view_index is not None:
            self.view.view_index = None  # n always continues from the latest step
            self.render_view()
        if self.view.finished and not self.scheduler.queue:
            self.status.say(f"finished ({self.view.finished.replace('_', ' ')}): press r to start again", "warning")
            return
        self.enqueue(ops.Step())

    def action_play(self) -> None:
        if self.loading():
            self.playing = not self.playing
            self.status.say(f"still loading: auto-play {'starts once the models are ready' if self.playing else 'off'}",
                            "warning")
            return
        if self.not_ready():
            return
        self.playing = not self.playing
        if self.playing and self.view.finished:
            self.playing = False
            self.status.say("finished: press r to start again, then space to play", "warning")
            return
        self.status.say(f"auto-play {'on' if self.playing else 'paused'} ({PLAY_DELAYS[self.delay_index]} s between steps, t changes it)")
        self.update_header()
        self.pump()

    def action_speed(self) -> None:
        self.delay_index = (self.delay_index + 1) % len(PLAY_DELAYS)
        self.status.say(f"auto-play: {PLAY_DELAYS[self.delay_index]} s between steps")

    def action_reset(self) -> None:
        if self.not_ready():
            return
        self.playing = False
        self.scheduler.submit(ops.Reset(self.prompt_text))
        if self.snap:  # show the reset state at once; the worker confirms it with the tokenized prompt
            self.show(self.snap.cleared(None if not self.driver.can_configure else (self.prompt_text,)))
        self.status.say("resetting…")
        self.pump()

    def action_block_size(self, delta: int) -> None:
        if self.not_ready():
            return
        current = self.view.next_block_size
        wanted = current + delta
        if not 1 <= wanted <= MAX_BLOCK_SIZE:
            self.status.say(f"block size stays {current}: it must be between 1 and {MAX_BLOCK_SIZE}", "warning")
            return
        self.view.pending["block_size"] = wanted
        fixed = ""
        if self.view.config.block_size_schedule == "auto":  # a k chosen by hand replaces the automatic choice
            self.view.pending["block_size_schedule"] = "constant"
            if self.view.config.tree == "auto":
                self.view.pending["tree"] = None
            fixed = " (fixed: auto off)"
        self.refresh_stats()
        self.status.say(f"block size k={wanted} from the next step{fixed}")

    def action_toggle_draft(self) -> None:
        self.toggle("draft_mode", DRAFT_MODES, "drafting")

    def action_toggle_verify(self) -> None:
        self.toggle("verify", VERIFY_MODES, "verification")

    def action_toggle_tree(self) -> None:
        """Chain <-> tree with the current drafter; the tree is the one asked for on the command line, if any."""
        if self.not_ready():
            return
        self.tree_shape = self.view.config.tree or self.tree_shape
        schedule = self.view.pending.get("block_size_schedule", self.view.config.block_size_schedule)
        if self.tree_shape == "auto" and schedule != "auto":  # --tree auto needs -k auto; a fixed k gets a fixed tree
            self.tree_shape = DEFAULT_TREE
        self.toggle("tree", (None, self.tree_shape), "drafts")

    def toggle(self, field: str, values: tuple[str, ...], what: str) -> None:
        if self.not_ready():
            return
        current = getattr(self.view.config, field)
        new = values[(values.index(current) + 1) % len(values)]
        self.view.pending[field] = new
        self.refresh_stats()
        self.status.say(f"{what}: {new or 'chain'} from the next step")

    def refresh_stats(self) -> None:
        """Pending settings show in the header and the stats panel before the step that uses them."""
        self.update_header()
        if self.snap:
            self.query_one(StatsPanel).show(self.view.shown(), self.view.next_block_size, self.view.pending)

    def action_next_drafter(self) -> None:
        if self.not_ready():
            return
        choices = self.driver.drafter_choices()
        current = self.snap.config.drafter if self.snap else choices[0]
        following = choices[(choices.index(current) + 1) % len(choices)] if current in choices else choices[0]
        self.playing = False
        self.scheduler.submit(ops.SwitchDrafter(following, self.prompt_text))
        self.status.say(f"switching drafter to {following}…")
        self.pump()

    def action_baseline(self) -> None:
        if self.not_ready():
            return
        self.enqueue(ops.Baseline())

    def action_save(self) -> None:
        if not self.not_ready():
            self.enqueue(ops.Save())

    def action_focus_prompt(self) -> None:
        bar = self.query_one(PromptBar)
        bar.focus()
        bar.move_cursor(bar.document.end)  # typing continues the prompt, it does not prepend
        self.status.say("editing the prompt: Enter restarts from it, Ctrl+J adds a line, Escape cancels")

    def action_tab(self) -> None:
        """Tab would move focus into the prompt silently, and the next key would be typed into it."""
        if isinstance(self.focused, PromptBar):
            self.status.say("Tab does not leave the prompt: Enter applies the edit, Escape cancels it", "warning")
        elif self.screen is self.screen_stack[0]:
            self.status.say("Tab does nothing here: p edits the prompt, ? lists every key", "warning")

    def action_screenshot(self) -> None:
        path = self.save_screenshot(filename=f"specdec-screen-{datetime.now():%Y%m%d-%H%M%S}.svg")
        self.status.say(f"picture of the screen saved to {path}", "ok")

    def get_system_commands(self, screen) -> Iterable[SystemCommand]:
        """The command palette (Ctrl+P) lists the app's own actions, the ones this driver can do."""
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            name = binding.action.partition("(")[0]
            if binding.tooltip and binding.id != "palette" and self.check_action(name, ()):
                yield SystemCommand(f"{binding.description} ({binding.key_display or binding.key})", binding.tooltip,
                                    partial(self.run_action, binding.action))

    def action_scroll_pane(self, direction: int) -> None:
        """PageDown/PageUp scroll the stats, or in the one-pane layout the pane shown, with no focus to move."""
        widget = {"context": ContextView, "stats": StatsPanel, "log": StepLog, "position": PositionInspector}
        target = self.query_one(widget[self.pane] if self.has_class("-compact") else StatsPanel)
        if direction > 0:
            target.scroll_page_down(animate=False)
        else:
            target.scroll_page_up(animate=False)

    def action_next_pane(self) -> None:
        self.show_pane(PANES[(PANES.index(self.pane) + 1) % len(PANES)])

    def show_pane(self, pane: str) -> None:
        for name in PANES:
            self.set_class(name == pane and name != PANES[0], f"-pane-{name}")
        self.pane = pane
        self.status.say(f"showing the {dict(context='accepted context', stats='stats', log='step log', position='position inspector')[pane]} (w: next pane, PgDn/PgUp scroll it)")

    def action_toggle_stats(self) -> None:
        expert = self.query_one(StatsPanel).toggle_expert()
        self.status.say("stats: full view (c, r, formula, chart; a toggles the chart)" if expert
                        else "stats: plain view (m: full stats)")

    def action_toggle_chart(self) -> None:
        chart = self.query_one(StatsPanel).toggle_chart()
        self.status.say("chart: accepted drafts per step" if chart == "histogram" else "chart: acceptance over the steps")

    def action_guide(self) -> None:
        self.push_screen(GuideScreen())

    def action_help(self) -> None:
        self.push_screen(HelpScreen([b for b in self.BINDINGS if self.refusal(b.action.partition("(")[0]) is None]))

    @on(PromptBar.Submitted)
    def prompt_submitted(self, event: PromptBar.Submitted) -> None:
        self.set_focus(None)
        if not self.driver.can_configure:
            return
        self.prompt_text = event.value
        self.action_reset()

    @on(PromptBar.Cancelled)
    def prompt_cancelled(self) -> None:
        self.set_focus(None)
        bar = self.query_one(PromptBar)
        if bar.value != self.prompt_text:
            bar.value = self.prompt_text  # the screen shows the prompt that is running, never an unapplied edit
            self.status.say("edit cancelled: the running prompt is back (Enter applies an edit)")
