"""Every binding, keys pressed while a step runs, reset while stepping, and a tiny real model end to end."""

import threading
from pathlib import Path

import pytest

from conftest import settle
from engine import SpecConfig
from engine.records.trace import read_trace
from specdec_tui.app import SpecDecApp
from specdec_tui.driver import ReplayDriver
from specdec_tui.widgets.help_screen import HelpScreen
from specdec_tui.widgets.narration_line import NarrationLine
from specdec_tui.widgets.prompt_bar import PromptBar
from specdec_tui.widgets.status_bar import StatusBar
from specdec_tui.widgets.step_log import StepLog

DATA = Path(__file__).parent.parent / "data"


def status(app) -> str:
    return app.query_one(StatusBar).message.plain


class GatedReplay(ReplayDriver):
    """A replay whose steps block until the test opens the gate: a slow model, on demand."""

    def __init__(self, path):
        super().__init__(path)
        self.gate = threading.Event()
        self.started = threading.Semaphore(0)

    def step(self, changes):
        self.started.release()
        assert self.gate.wait(10), "the test never opened the gate"
        return super().step(changes)


async def start_blocked_step(pilot, driver: GatedReplay, presses: int = 1) -> None:
    """Press n until a step is running and blocked inside the 'model'."""
    await settle(pilot)
    for _ in range(presses):
        await pilot.press("n")
    assert driver.started.acquire(timeout=5)


def replay_app(**kwargs) -> SpecDecApp:
    return SpecDecApp(replay=str(DATA / "greedy.jsonl"), **kwargs)


def tiny_app(tiny, **config) -> SpecDecApp:
    return SpecDecApp(config=SpecConfig(verifier=tiny["verifier"], drafter=tiny["drafter"], max_new_tokens=24, **config))


@pytest.mark.anyio
async def test_n_steps_and_the_log_matches_the_stats():
    app = replay_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for _ in range(3):
            await pilot.press("n")
            await settle(pilot)
        assert app.snap.stats.steps == 3
        assert app.query_one(StepLog).row_count == 3
        assert "step 3" in status(app)


class GatedSpeedCheck(GatedReplay):
    """`b` on a driver with models, blocking like the gated steps: the speed check, on demand."""

    has_models = True

    def baseline(self):
        self.started.release()
        assert self.gate.wait(10), "the test never opened the gate"
        return self.snapshot()


@pytest.mark.anyio
async def test_the_spinner_holds_still_while_b_times_decoding_and_turns_while_a_step_runs():
    """Redrawing the spinner takes CPU from the decoding threads: it would slow the very run being timed."""
    driver = GatedSpeedCheck(str(DATA / "greedy.jsonl"))
    app = SpecDecApp(driver=driver)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        bar = app.query_one(StatusBar)
        await pilot.press("b")
        assert driver.started.acquire(timeout=5)
        frame = bar.frame
        await pilot.pause(0.35)
        assert bar.frame == frame and bar.still
        driver.gate.set()
        await settle(pilot)
        driver.gate.clear()
        await start_blocked_step(pilot, driver)
        frame = bar.frame
        await pilot.pause(0.35)
        assert bar.frame > frame and not bar.still
        driver.gate.set()
        await settle(pilot)


@pytest.mark.anyio
async def test_steps_pressed_while_a_step_runs_are_queued_not_lost():
    driver = GatedReplay(str(DATA / "greedy.jsonl"))
    app = SpecDecApp(driver=driver)
    async with app.run_test(size=(120, 40)) as pilot:
        await start_blocked_step(pilot, driver, presses=6)
        assert app.scheduler.queued_steps == 5
        assert app.query_one(StatusBar).queued == 5  # shown as "· 5 queued" next to the spinner
        driver.gate.set()
        for _ in range(20):
            await settle(pilot)
            if not app.scheduler.busy and not app.scheduler.queue:
                break
        assert app.snap.stats.steps == 6  # none lost, none applied twice
        assert app.query_one(StepLog).row_count == 6
        assert app.snap.stats.new_tokens == sum(len(r.emitted) for r in app.snap.steps)


@pytest.mark.anyio
async def test_reset_while_stepping_never_shows_the_stale_step():
    driver = GatedReplay(str(DATA / "greedy.jsonl"))
    app = SpecDecApp(driver=driver)
    async with app.run_test(size=(120, 40)) as pilot:
        await start_blocked_step(pilot, driver)
        await pilot.press("r")
        await pilot.pause()
        assert app.snap.steps == ()  # the reset state shows at once
        driver.gate.set()
        await settle(pilot)
        await settle(pilot)
        assert app.snap.stats.steps == 0 and app.query_one(StepLog).row_count == 0
        await pilot.press("n")
        await settle(pilot)
        assert app.snap.stats.steps == 1


@pytest.mark.anyio
async def test_space_plays_to_the_end_and_t_changes_speed():
    app = replay_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("t", "t")  # 0.3 s -> 1 s -> no pause
        assert "0.0 s" in status(app)
        await pilot.press("space")  # a replay steps instantly: play may already have reached the end
        for _ in range(100):
            await settle(pilot)
            if app.snap.finished:
                break
            await pilot.pause(0.05)
        assert app.snap.finished and not app.scheduler.play.on
        assert app.snap.stats.steps == len(app.driver.trace.steps)
        await pilot.press("n")
        assert "finished" in status(app)


@pytest.mark.anyio
async def test_settings_keys_are_refused_in_a_replay_with_a_message():
    app = replay_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        # The status says "replay loaded" before any key: clear it, so only the refusal itself can pass.
        for key in ("plus", "minus", "g", "v", "e", "d", "p"):
            app.status.say("-")
            await pilot.press(key)
            assert "this is a replay: its settings and prompt are fixed by the trace" in status(app), key
        app.status.say("-")
        await pilot.press("b")
        assert "the speed check needs the models" in status(app)


@pytest.mark.anyio
async def test_help_opens_and_closes():
    app = replay_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


@pytest.mark.anyio
async def test_q_quits():
    app = replay_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


@pytest.mark.anyio
async def test_save_writes_a_replayable_trace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = replay_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("n", "n")
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        assert "trace saved" in status(app)
    saved = list(tmp_path.glob("specdec-trace-*.jsonl"))
    assert len(saved) == 1
    assert len(read_trace(saved[0]).steps) == 2


@pytest.mark.anyio
async def test_resize_down_and_back():
    app = replay_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        await pilot.resize_terminal(40, 12)
        await pilot.pause()
        assert app.has_class("-compact")
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert not app.has_class("-compact")
        await pilot.press("n")
        await settle(pilot)
        assert app.snap.stats.steps == 2


# ---- with a tiny real model, through the worker --------------------------------------------------------------


@pytest.mark.anyio
async def test_tiny_model_end_to_end(tiny, tiny_verifier):
    from conftest import plain_greedy

    app = tiny_app(tiny, draft_mode="greedy", block_size=3)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.scheduler.ready, status(app)
        for _ in range(4):
            await pilot.press("n")
            await settle(pilot)
        session = app.driver.session
        assert app.snap.stats.steps == 4
        expected = plain_greedy(tiny_verifier, session.prompt_ids, len(session.new_token_ids))
        assert session.new_token_ids == expected
        await pilot.press("b")
        await settle(pilot)
        assert "identical to plain decoding" in app.snap.baseline_note
        assert "no pauses" in app.snap.baseline_note and "speed-up" in app.snap.baseline_note
        assert app.snap.stats.steps == 4 and session.new_token_ids == expected  # the check ran aside: the run is back
        await pilot.press("n")  # the comparison follows the run, it does not go stale
        await settle(pilot)
        assert f"over {len(session.new_token_ids)} tokens" in app.snap.baseline_note
        assert session.new_token_ids == plain_greedy(tiny_verifier, session.prompt_ids, len(session.new_token_ids))


@pytest.mark.anyio
async def test_block_size_and_mode_keys_apply_to_the_next_step(tiny):
    app = tiny_app(tiny, block_size=2, draft_mode="sampled")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("plus", "plus", "minus")
        assert "k=3" in app.sub_title
        await pilot.press("g", "v")
        assert "greedy drafts" in app.sub_title and "sampling verify" in app.sub_title
        await pilot.press("n")
        await settle(pilot)
        step = app.snap.steps[-1]
        assert (step.block_size, step.draft_mode, step.verify_mode) == (3, "greedy", "sampling")
        for _ in range(3):
            await pilot.press("minus")
        assert "stays 1" in status(app)


@pytest.mark.anyio
async def test_prompt_editing_restarts_and_bad_prompt_keeps_state(tiny):
    app = tiny_app(tiny)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        await pilot.press("p")
        assert isinstance(app.focused, PromptBar)
        app.query_one(PromptBar).value = ""
        await pilot.press("space", "enter")  # a whitespace-only prompt
        await settle(pilot)
        assert "only whitespace" in status(app)
        assert app.driver.session.prompt == "In a distant future,"  # nothing lost
        await pilot.press("p")
        app.query_one(PromptBar).value = "def add"
        await pilot.press("enter")
        await settle(pilot)
        assert app.driver.session.prompt == "def add" and app.snap.stats.steps == 0
        assert app.focused is None  # keys belong to the app again
        await pilot.press("n")
        await settle(pilot)
        assert app.snap.stats.steps == 1


@pytest.mark.anyio
async def test_escape_leaves_the_prompt_so_letters_work_again(tiny):
    app = tiny_app(tiny)  # a live run: a replay's prompt is fixed and cannot be focused
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.query_one(PromptBar).focus()
        await pilot.press("n")  # types into the prompt, no step
        await settle(pilot)
        assert app.snap.stats.steps == 0
        await pilot.press("escape", "n")
        await settle(pilot)
        assert app.snap.stats.steps == 1


@pytest.mark.anyio
async def test_unknown_model_is_shown_in_the_app():
    app = SpecDecApp(config=SpecConfig(verifier="no-such-model-xyz"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        # The whole message where the eye is (the status line would cut it), and never "still loading" (issue 26).
        assert "no-such-model-xyz" in app.query_one(NarrationLine).content.plain and "cannot start" in status(app)
        await pilot.press("n")
        assert "still loading" not in status(app) and "press q to quit" in status(app)


@pytest.mark.anyio
async def test_browse_earlier_steps_and_n_continues_from_the_latest():
    app = replay_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for _ in range(4):
            await pilot.press("n")
            await settle(pilot)
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert app.view.view_index == 1 and "viewing step 2 of 4" in status(app)
        assert app.query_one(StepLog).row_count == 2  # the run as it was after step 2
        await pilot.press("right_square_bracket", "right_square_bracket")
        assert app.view.view_index is None
        await pilot.press("left_square_bracket", "n")
        await settle(pilot)
        assert app.view.view_index is None and app.snap.stats.steps == 5


@pytest.mark.anyio
async def test_left_right_select_positions_within_the_block():
    from specdec_tui.widgets.position_inspector import PositionInspector

    app = replay_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        for _ in range(10):
            await pilot.press("right")
        last = len(app.snap.steps[-1].positions) - 1
        assert app.view.selected == last
        assert f"position {last + 1}/{last + 1}" in app.query_one(PositionInspector).border_title
        for _ in range(10):
            await pilot.press("left")
        assert app.view.selected == 0


@pytest.mark.anyio
async def test_a_hundred_step_keys_while_steps_run(tiny):
    """Pressed as fast as possible: the app stays consistent, every step applied exactly once."""
    app = tiny_app(tiny, block_size=2)
    app.driver.config = app.driver.config.replace(max_new_tokens=200)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for _ in range(100):
            await pilot.press("n")
        for _ in range(200):
            await settle(pilot)
            if not app.scheduler.busy and not app.scheduler.queue:
                break
        stats, steps = app.snap.stats, app.snap.steps
        finished = app.snap.finished is not None
        assert stats.steps == len(steps) == app.query_one(StepLog).row_count
        assert stats.steps == 100 or finished
        assert stats.new_tokens == sum(len(r.emitted) for r in steps) == len(app.driver.session.new_token_ids)
        assert stats.accepted == sum(r.accepted for r in steps)


@pytest.mark.anyio
async def test_clicking_a_chip_selects_its_position():
    from specdec_tui.chips import LABEL_WIDTH, column_width
    from specdec_tui.widgets.verifier_row import VerifierRow

    app = replay_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        row = app.query_one(VerifierRow)
        width = column_width(row.content_size.width, len(app.snap.steps[-1].positions))
        # border + padding = 2 cells before the content; then the label, then two columns.
        await pilot.click(VerifierRow, offset=(2 + LABEL_WIDTH + 2 * width + 1, 1))
        await pilot.pause()
        assert app.view.selected == 2


@pytest.mark.anyio
async def test_quit_while_a_step_runs_returns_promptly():
    import time

    driver = GatedReplay(str(DATA / "greedy.jsonl"))
    app = SpecDecApp(driver=driver)
    async with app.run_test(size=(120, 40)) as pilot:
        await start_blocked_step(pilot, driver)
        await pilot.press("q")
        released = time.monotonic()
        driver.gate.set()  # the forward pass in flight ends now
    assert time.monotonic() - released < 1.0
    assert app.return_code == 0


@pytest.mark.anyio
async def test_d_switches_the_drafter_and_restarts(tiny):
    app = tiny_app(tiny, block_size=3, draft_mode="greedy")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        seen = []
        for _ in range(4):
            await pilot.press("d")
            await settle(pilot)
            seen.append(app.snap.config.drafter)
            assert app.snap.stats.steps == 0 and f"drafter {seen[-1]}" in app.sub_title
            await pilot.press("n")
            await settle(pilot)
            assert app.snap.stats.steps == 1, status(app)
        assert seen == ["same", "ngram", "early-exit", tiny["drafter"]]


@pytest.mark.anyio
async def test_a_step_without_drafts_is_not_called_a_bonus(tiny):
    from specdec_tui.widgets.comparison_row import ComparisonRow

    app = SpecDecApp(config=SpecConfig(verifier=tiny["verifier"], drafter="ngram", max_new_tokens=8), prompt="ab")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        assert app.snap.steps[-1].drafted == 0
        text = app.query_one(ComparisonRow).content.plain
        assert "no drafts this step" in text and "BONUS" not in text


@pytest.mark.anyio
async def test_an_auto_play_timer_that_fires_while_the_app_closes_is_harmless():
    """Seen once in CI: a replay still playing as its test ended; the timer fired after the screen's widgets were
    gone and the step it queued looked for the status line (a traceback on quit). Teardown, then the timer."""
    app = replay_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("space")
        await settle(pilot)
        app.scheduler.play.on = True
        await app.screen.query("*").remove()  # what closing does to the widgets
        app.auto_step()
        assert not app.scheduler.busy
