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
from textual.containers import Horizontal, Vertical
from textual.widgets import Header, Static

from engine import DEFAULT_PROMPT, DRAFT_MODES, VERIFY_MODES, EngineError, SpecConfig
from engine import shown as safe_text

from . import operations as ops
from .bindings import BINDINGS, refusal
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

COMPACT_BELOW = (100, 32)  # width, height: below either, the one-pane layout
WIDE_FROM = (180, 45)
SMALLEST = (60, 18)  # below this no layout can show a step: a notice instead
PANES = ("context", "stats", "log", "position")  # what `w` cycles through in the one-pane layout


class SpecDecApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "specdec-tui"
    COMMAND_PALETTE_BINDING = "ctrl+p"
    AUTO_FOCUS = None  # keys belong to the app until the user edits the prompt
    BINDINGS = BINDINGS

    def __init__(self, config: SpecConfig | None = None, prompt: str = DEFAULT_PROMPT, replay: str | None = None,
                 driver: Driver | None = None):
        super().__init__()
        self.driver: Driver = driver or (ReplayDriver(replay) if replay else EngineDriver(config or SpecConfig()))
        self.prompt_text = prompt
        self.scheduler = Scheduler()
        self.view = ViewModel()
        self.pane = PANES[0]
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
        elif (delay := self.scheduler.play_delay(bool(self.view.finished))) is not None:
            self.set_timer(delay, self.auto_step)

    def auto_step(self) -> None:
        if not self.query(StatusBar):  # the timer fired while the app closes (q during auto-play): nothing to step
            return
        if self.scheduler.play_delay(bool(self.view.finished)) is not None:  # still playing, nothing else to run
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
        self.show(message.snap)
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
        for warning in message.snap.warnings:  # text from the trace: shown literally
            self.notify(safe_text(warning, keep=""), title="trace", severity="warning", timeout=10, markup=False)

    @on(Stepped)
    def stepped(self, message: Stepped) -> None:
        if not self.current(message):
            return
        result, snap = message.result, message.snap
        if snap.finished:
            self.scheduler.stop()  # before show(): the header must not say "playing" after the end
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
            self.show(message.snap)
            self.status.say("reset: press n to step", "ok")

    @on(DrafterSwitched)
    def drafter_switched(self, message: DrafterSwitched) -> None:
        if self.current(message):
            self.show(message.snap)
            self.status.say(f"drafter {message.snap.config.drafter}: press n to step", "ok")

    @on(BaselineDone)
    def baseline_done(self, message: BaselineDone) -> None:
        if self.current(message):
            self.show(message.snap)
            # The first parts fit the status line; the stats panel shows every part on its own line.
            parts = (message.snap.baseline_note or "done").split(" · ")
            more = " (all of it in the stats)" if len(parts) > 3 else ""
            self.status.say(f"speed check: {' · '.join(parts[:3])}{more}", "ok")

    @on(Saved)
    def saved(self, message: Saved) -> None:
        self.status.say(f"trace saved to {message.path}", "ok")

    @on(OperationFailed)
    def operation_failed(self, message: OperationFailed) -> None:
        if not self.current(message):
            return
        error = message.error
        self.scheduler.play.on = False
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
        selection = self.view.selection()
        latest, selected, node = selection.step, selection.column, selection.node
        self.set_class(latest is not None and latest.tree is not None, "-tree-step")
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
        play = "▶ playing · " if self.scheduler.play.on else ""  # first, so a narrow header never cuts it off
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
        return refusal(action, self.driver.can_configure, self.driver.has_models)

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
        self.view.click(message.index)
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
        play = self.scheduler.play
        if self.loading():
            play.on = not play.on
            self.status.say(f"still loading: auto-play {'starts once the models are ready' if play.on else 'off'}",
                            "warning")
            return
        if self.not_ready():
            return
        if not play.on and self.view.finished:
            self.status.say("finished: press r to start again, then space to play", "warning")
            return
        play.on = not play.on
        self.status.say(f"auto-play {'on' if play.on else 'paused'} ({play.delay} s between steps, t changes it)")
        self.update_header()
        self.pump()

    def action_speed(self) -> None:
        self.status.say(f"auto-play: {self.scheduler.play.slower()} s between steps")

    def action_reset(self) -> None:
        if self.not_ready():
            return
        self.scheduler.play.on = False
        self.scheduler.submit(ops.Reset(self.prompt_text))
        if self.snap:  # show the reset state at once; the worker confirms it with the tokenized prompt
            self.show(self.snap.cleared(None if not self.driver.can_configure else (self.prompt_text,)))
        self.status.say("resetting…")
        self.pump()

    def action_block_size(self, delta: int) -> None:
        if self.not_ready():
            return
        text, refused = self.view.change_block_size(delta)
        if not refused:
            self.refresh_stats()
        self.status.say(text, "warning" if refused else "info")

    def action_toggle_draft(self) -> None:
        self.toggled("drafting", lambda: self.view.toggle("draft_mode", DRAFT_MODES))

    def action_toggle_verify(self) -> None:
        self.toggled("verification", lambda: self.view.toggle("verify", VERIFY_MODES))

    def action_toggle_tree(self) -> None:
        self.toggled("drafts", self.view.toggle_tree)

    def toggled(self, what: str, change) -> None:
        if self.not_ready():
            return
        new = change()
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
        self.scheduler.play.on = False
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
