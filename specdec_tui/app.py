"""The Textual app: panels that show one speculative step at a time, driven by keys, with model work in a thread.

Model work is serialised: one operation at a time runs in a thread worker; keys pressed meanwhile are queued
(steps, reset, baseline, save) or recorded as settings for the next step, and the status bar says so.
A reset bumps `epoch`, so a step that was still running when the user reset can never reach the screen.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Footer, Header, Input, Label, ProgressBar
from textual.worker import Worker, WorkerState

from engine import DEFAULT_PROMPT, MAX_BLOCK_SIZE, EngineError, SpecConfig, Stats
from engine.safe_text import shown as safe_text
from engine.theory import theory_summary

from .driver import EngineDriver, ReplayDriver, Snapshot
from .messages import LoadProgress, PositionClicked
from .widgets.comparison_row import ComparisonRow
from .widgets.context_view import ContextView
from .widgets.draft_row import DraftRow
from .widgets.help_screen import HelpScreen
from .widgets.position_inspector import PositionInspector
from .widgets.prompt_bar import PromptBar
from .widgets.stats_panel import StatsPanel
from .widgets.status_bar import StatusBar
from .widgets.step_log import StepLog
from .widgets.verifier_row import VerifierRow

PLAY_DELAYS = (0.0, 0.3, 1.0)  # seconds between auto-play steps; `t` cycles through them
COMPACT_BELOW = (100, 32)  # width, height


class SpecDecApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "specdec-tui"
    ENABLE_COMMAND_PALETTE = False
    AUTO_FOCUS = None  # keys belong to the app until the user edits the prompt
    BINDINGS = [
        Binding("n", "step", "Step", id="step"),
        Binding("space", "play", "Play", id="play"),
        Binding("r", "reset", "Reset", id="reset"),
        Binding("plus,equals_sign", "block_size(1)", "k+1", id="block_size.up"),
        Binding("minus", "block_size(-1)", "k-1", id="block_size.down"),
        Binding("g", "toggle_draft", "Draft", id="draft_mode"),
        Binding("v", "toggle_verify", "Verify", id="verify_mode"),
        Binding("d", "next_drafter", "Drafter", id="drafter"),
        Binding("b", "baseline", "Baseline", id="baseline"),
        Binding("s", "save", "Save", id="save"),
        Binding("t", "speed", "Play speed", show=False, id="speed"),
        Binding("p", "focus_prompt", "Prompt", id="prompt"),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("q", "quit", "Quit", id="quit"),
        Binding("left", "select(-1)", "Position", show=False, id="position.left"),
        Binding("right", "select(1)", "Position", show=False, id="position.right"),
        Binding("left_square_bracket", "browse(-1)", "Earlier step", show=False, id="browse.earlier"),
        Binding("right_square_bracket", "browse(1)", "Later step", show=False, id="browse.later"),
        Binding("escape", "leave_prompt", "Leave prompt", show=False, id="leave_prompt"),
    ]
    HELP_ROWS = [
        ("n", "one speculative step (draft -> verify -> accept)"),
        ("space", "play / pause auto-stepping"),
        ("t", "auto-play speed: no pause, 0.3 s, 1 s between steps"),
        ("r", "reset to the prompt"),
        ("+ / -", f"block size k (drafted tokens per step), 1..{MAX_BLOCK_SIZE}"),
        ("g", "drafting: greedy <-> sampled (temperature, top-k, top-p, penalties)"),
        ("v", "verification: greedy <-> speculative sampling"),
        ("d", "next drafter: the one you chose, same, ngram, early-exit (half the layers); restarts"),
        ("b", "run plain decoding (baseline): identical output? real speed-up?"),
        ("s", "save the steps as a JSON Lines trace (replay with --replay FILE)"),
        ("← / →", "pick a position: the drafter's and verifier's top-5 side by side"),
        ("[ / ]", "browse earlier steps (view only; n continues from the latest)"),
        ("p", "edit the prompt (Enter restarts from it, Escape leaves it)"),
        ("?", "this help"),
        ("q", "quit"),
    ]

    def __init__(self, config: SpecConfig | None = None, prompt: str = DEFAULT_PROMPT, replay: str | None = None,
                 driver=None):
        super().__init__()
        self.driver = driver or (ReplayDriver(replay) if replay else EngineDriver(config or SpecConfig()))
        self.prompt_text = prompt
        self.epoch = 0
        self.queue: deque = deque()
        self.busy = False
        self.ready = False
        self.playing = False
        self.delay_index = 1
        self.pending: dict = {}
        self.snap: Snapshot | None = None
        self.view_index: int | None = None  # an earlier step being browsed; None = the latest
        self.selected = 0  # position shown in the inspector

    # -- layout -------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield PromptBar(self.prompt_text, id="prompt-bar")
        with Horizontal(id="loading"):
            yield Label("loading", id="loading-label")
            yield ProgressBar(total=100, show_eta=False, id="loading-bar")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield DraftRow(id="draft-row")
                yield VerifierRow(id="verifier-row")
                yield ComparisonRow(id="comparison-row")
                yield ContextView(id="context")
            with Vertical(id="right"):
                yield StatsPanel(id="stats")
        with Horizontal(id="bottom"):
            yield StepLog(id="step-log")
            yield PositionInspector(id="inspector")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(StepLog).can_focus = False
        self.query_one(PromptBar).cursor_blink = False if self.is_headless else True
        self.sub_title = safe_text(self.driver.title, keep="")
        self.query_one("#loading").add_class("-visible")
        self.query_one(StatusBar).say("loading models in the background…")
        self.apply_size_class(self.size.width, self.size.height)
        self.start("load", self._load)

    def on_resize(self, event) -> None:
        self.apply_size_class(event.size.width, event.size.height)

    def apply_size_class(self, width: int, height: int) -> None:
        self.set_class(width < COMPACT_BELOW[0] or height < COMPACT_BELOW[1], "-compact")

    # -- running model work -------------------------------------------------------------------------------

    def _load(self):
        self.driver.load(lambda text, fraction: self.post_message(LoadProgress(text, fraction)))
        return self.driver.reset(self.prompt_text)

    def start(self, kind: str, function, *args) -> None:
        """Run one operation in a thread worker; its result comes back tagged with the epoch it started in."""
        self.busy = True
        epoch = self.epoch
        labels = {"load": "loading", "step": "stepping", "reset": "resetting", "baseline": "running plain decoding",
                  "save": "saving", "drafter": "switching drafter"}
        self.status.busy(labels[kind], self.queued_steps)

        def work():
            try:
                return kind, epoch, function(*args)
            except Exception as error:  # every failure becomes a message on screen, never a traceback
                return kind, epoch, error

        self.run_worker(work, thread=True, group="model", name=kind, exit_on_error=False)

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    @property
    def queued_steps(self) -> int:
        return sum(1 for op in self.queue if op[0] == "step")

    def on_load_progress(self, message: LoadProgress) -> None:
        self.query_one("#loading-label", Label).update(Content(safe_text(message.text, keep="")))  # paths are not markup
        self.query_one("#loading-bar", ProgressBar).update(progress=100 * message.fraction)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "model" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        self.busy = False
        self.status.busy(None)
        kind = event.worker.name
        if event.state == WorkerState.ERROR:
            self.fail(kind, event.worker.error)
        else:
            kind, epoch, value = event.worker.result
            if epoch != self.epoch:
                pass  # the result of a step started before a reset: dropped, never shown
            elif isinstance(value, Exception):
                self.fail(kind, value)
            else:
                self.deliver(kind, value)
        self.pump()

    def fail(self, kind: str, error: BaseException) -> None:
        self.playing = False
        text = str(error) if isinstance(error, EngineError) else f"{type(error).__name__}: {error}"
        if kind == "load":
            self.query_one("#loading").remove_class("-visible")
            if self.driver.replay or getattr(self.driver, "session", None) is None:
                self.status.say(f"cannot start: {text} (q quits)", "error")
                return
            self.ready = True  # models loaded, only the prompt was refused: edit it and press Enter
        self.queue = deque(op for op in self.queue if op[0] != "step")
        self.status.say(text, "error")

    def deliver(self, kind: str, value) -> None:
        if kind == "load":
            self.ready = True
            self.query_one("#loading").remove_class("-visible")
            self.show(value, None)
            if self.driver.replay:
                self.query_one(PromptBar).value = self.driver.prompt
            hint = "replay loaded" if self.driver.replay else "models ready"
            warnings = " · ".join(self.driver.warnings)
            if warnings:  # e.g. the model cache could not be written: said once, where the user looks
                self.status.say(f"{warnings} · {hint}: press n to step", "warning")
            else:
                self.status.say(f"{hint}: press n to step, space to play, ? for help", "ok")
        elif kind == "step":
            result, snap = value
            self.show(snap, result)
            if snap.finished:
                self.playing = False
                self.queue = deque(op for op in self.queue if op[0] != "step")
                self.status.say(f"finished ({snap.finished.replace('_', ' ')}): press r to start again, p to edit the prompt", "ok")
            else:
                self.status.say(f"step {result.step}: kept {result.accepted}/{result.drafted} drafts, +{len(result.emitted)} tokens")
        elif kind in ("reset", "drafter"):
            self.show(value, None)
            done = f"drafter {value.config.drafter}" if kind == "drafter" else "reset"
            self.status.say(f"{done}: press n to step", "ok")
        elif kind == "baseline":
            self.show(value, self.snap.steps[-1] if self.snap and self.snap.steps else None)
            self.status.say(f"baseline: {value.baseline_note}", "ok")
        elif kind == "save":
            self.status.say(f"trace saved to {value}", "ok")

    def pump(self) -> None:
        """Start the next queued operation, or the next auto-play step."""
        if self.busy or not self.ready:
            return
        if self.queue:
            op = self.queue.popleft()
            if op[0] == "step":
                if self.snap and self.snap.finished:
                    return self.pump()
                changes, self.pending = self.pending, {}
                self.start("step", self.driver.step, changes)
            elif op[0] == "reset":
                self.start("reset", self.driver.reset, op[1])
            elif op[0] == "baseline":
                self.start("baseline", self.driver.baseline)
            elif op[0] == "drafter":
                self.start("drafter", self.driver.switch_drafter, op[1], self.prompt_text)
            elif op[0] == "save":
                self.start("save", self.driver.save)
            return
        if self.playing and not (self.snap and self.snap.finished):
            self.set_timer(max(PLAY_DELAYS[self.delay_index], 0.01), self.auto_step)  # a 0 s timer divides by zero

    def auto_step(self) -> None:
        if self.playing and not self.busy and not self.queue:
            self.queue.append(("step",))
            self.pump()

    def enqueue(self, op: tuple) -> None:
        self.queue.append(op)
        if self.busy:
            self.status.busy(self.status.busy_label, self.queued_steps)
        self.pump()

    # -- showing ------------------------------------------------------------------------------------------

    def show(self, snap: Snapshot, result) -> None:
        """A new state from the engine: always shows the latest step."""
        self.snap = snap
        self.view_index = None
        self.render_view()

    def render_view(self) -> None:
        snap = self.snap
        if self.view_index is not None and self.view_index < len(snap.steps) - 1:
            steps = snap.steps[: self.view_index + 1]  # the run as it was after that step
            stats = Stats.from_steps(steps)
            shown = replace(snap, steps=steps, stats=stats, finished=None, baseline_note=None,
                            block_size=steps[-1].block_size, theory=theory_summary(stats, steps[-1].block_size))
        else:
            shown = snap
        latest = shown.steps[-1] if shown.steps else None
        if latest is not None:
            self.selected = min(self.selected, len(latest.positions) - 1)
        self.query_one(DraftRow).show(latest, self.selected)
        self.query_one(VerifierRow).show(latest, self.selected)
        self.query_one(ComparisonRow).show(latest, self.selected)
        self.query_one(PositionInspector).show(latest, self.selected)
        self.query_one(ContextView).show(shown.prompt_pieces, shown.steps, shown.finished)
        self.query_one(StatsPanel).show(shown)
        self.query_one(StepLog).show(shown.steps)
        self.update_header()

    def update_header(self) -> None:
        if not self.snap:
            return
        c = self.snap.config.replace(**self.pending) if self.pending else self.snap.config
        k = self.pending.get("block_size", self.snap.block_size)
        play = " · ▶ playing" if self.playing else ""
        self.sub_title = safe_text(f"{self.driver.title} · k={k} · {c.draft_mode} drafts · {c.verify} verify"
                                   f"{' · k adaptive' if c.block_size_schedule == 'heuristic' else ''}{play}", keep="")

    # -- actions ------------------------------------------------------------------------------------------

    def not_ready(self) -> bool:
        if not self.ready:
            self.status.say("still loading: this key works once the models are ready", "warning")
            return True
        return False

    def action_select(self, delta: int) -> None:
        if not (self.snap and self.snap.steps):
            return
        self.selected = max(0, self.selected + delta)
        self.render_view()

    def on_position_clicked(self, message: PositionClicked) -> None:
        self.selected = message.index
        self.render_view()

    def action_browse(self, delta: int) -> None:
        if not (self.snap and self.snap.steps):
            self.status.say("no steps yet: press n first", "warning")
            return
        last = len(self.snap.steps) - 1
        current = last if self.view_index is None else self.view_index
        self.view_index = max(0, min(last, current + delta))
        if self.view_index == last:
            self.view_index = None
            self.status.say(f"latest step ({last + 1})")
        else:
            self.status.say(f"viewing step {self.view_index + 1} of {last + 1} (] later, n continues from the latest)")
        self.render_view()

    def action_step(self) -> None:
        if self.not_ready():
            return
        if self.view_index is not None:
            self.view_index = None  # n always continues from the latest step
            self.render_view()
        if self.snap and self.snap.finished and not self.queue:
            self.status.say(f"finished ({self.snap.finished.replace('_', ' ')}): press r to start again", "warning")
            return
        self.enqueue(("step",))

    def action_play(self) -> None:
        if self.not_ready():
            return
        self.playing = not self.playing
        if self.playing and self.snap and self.snap.finished:
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
        self.epoch += 1  # whatever is running now is stale
        self.playing = False
        self.queue = deque(op for op in self.queue if op[0] not in ("step", "reset"))
        self.queue.appendleft(("reset", self.prompt_text))
        if self.snap:  # show the reset state at once; the worker confirms it with the tokenized prompt
            pieces = self.snap.prompt_pieces if self.driver.replay else (self.prompt_text,)
            self.show(replace(self.snap, prompt_pieces=pieces, steps=(), stats=Stats(), finished=None,
                              theory={}, baseline_note=None), None)
        self.status.say("resetting…")
        self.pump()

    def action_block_size(self, delta: int) -> None:
        if self.not_ready() or self.refuse_in_replay():
            return
        current = self.pending.get("block_size", self.snap.block_size if self.snap else 4)
        wanted = current + delta
        if not 1 <= wanted <= MAX_BLOCK_SIZE:
            self.status.say(f"block size stays {current}: it must be between 1 and {MAX_BLOCK_SIZE}", "warning")
            return
        self.pending["block_size"] = wanted
        self.update_header()
        self.status.say(f"block size k={wanted} from the next step")

    def action_toggle_draft(self) -> None:
        self.toggle("draft_mode", ("greedy", "sampled"), "drafting")

    def action_toggle_verify(self) -> None:
        self.toggle("verify", ("greedy", "sampling"), "verification")

    def toggle(self, field: str, values: tuple[str, str], what: str) -> None:
        if self.not_ready() or self.refuse_in_replay():
            return
        current = self.pending.get(field, getattr(self.snap.config, field))
        new = values[1] if current == values[0] else values[0]
        self.pending[field] = new
        self.update_header()
        self.status.say(f"{what}: {new} from the next step")

    def refuse_in_replay(self) -> bool:
        if self.driver.replay:
            self.status.say("this is a replay: settings are fixed by the trace", "warning")
            return True
        return False

    def action_next_drafter(self) -> None:
        if self.not_ready() or self.refuse_in_replay():
            return
        choices = self.driver.drafter_choices()
        current = self.snap.config.drafter if self.snap else choices[0]
        following = choices[(choices.index(current) + 1) % len(choices)] if current in choices else choices[0]
        self.epoch += 1  # a new drafter restarts decoding: anything in flight is stale
        self.playing = False
        self.queue = deque(op for op in self.queue if op[0] not in ("step", "reset", "drafter"))
        self.queue.append(("drafter", following))
        self.status.say(f"switching drafter to {following}…")
        self.pump()

    def action_baseline(self) -> None:
        if self.not_ready():
            return
        if self.driver.replay:
            self.status.say("the baseline needs the models; a replay has none (run without --replay)", "warning")
            return
        self.enqueue(("baseline",))

    def action_save(self) -> None:
        if not self.not_ready():
            self.enqueue(("save",))

    def action_focus_prompt(self) -> None:
        if self.driver.replay:
            self.status.say("this is a replay: the prompt is fixed by the trace", "warning")
            return
        self.query_one(PromptBar).focus()

    def action_leave_prompt(self) -> None:
        self.set_focus(None)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.HELP_ROWS))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.set_focus(None)
        if self.driver.replay:
            return
        self.prompt_text = event.value
        self.action_reset()
