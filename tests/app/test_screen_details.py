"""Issue 13: what misled, what was cut off and what was missing for a newcomer; each test failed before its fix."""

import dataclasses
from pathlib import Path

import pytest

from conftest import settle
from engine import Alternative, Stats
from specdec_tui.app import SpecDecApp
from specdec_tui.cli import main
from specdec_tui.driver import ReplayDriver
from specdec_tui.widgets.comparison_row import ComparisonRow
from specdec_tui.widgets.draft_row import DraftRow
from specdec_tui.widgets.help_screen import HelpScreen
from specdec_tui.widgets.position_inspector import PositionInspector
from specdec_tui.widgets.prompt_bar import PromptBar
from specdec_tui.widgets.stats_panel import StatsPanel
from specdec_tui.widgets.status_bar import StatusBar
from specdec_tui.widgets.step_log import StepLog

DATA = Path(__file__).parent.parent / "data"


async def press(pilot, *keys) -> None:
    await settle(pilot)  # loading first
    for key in keys:
        await pilot.press(key)
        await settle(pilot)


def screen_text(app) -> str:
    import re
    import html

    svg = app.export_screenshot()
    rows: dict[float, list] = {}
    for m in re.finditer(r'<text[^>]*?x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', svg, re.S):
        rows.setdefault(float(m.group(2)), []).append((float(m.group(1)), html.unescape(m.group(3))))
    lines = []
    for y in sorted(rows):
        line = ""
        for x, text in sorted(rows[y]):
            line = line.ljust(int(round(x / 12.2))) + text
        lines.append(line.replace("\xa0", " "))
    return "\n".join(lines)


def text(widget) -> str:
    content = getattr(widget, "content", None)
    return content.plain if hasattr(content, "plain") else str(content)


def stats_text(app) -> str:
    panel = app.query_one(StatsPanel)
    return "\n".join(text(w) for w in panel.query("Static"))


class EditedReplay(ReplayDriver):
    """A recorded trace with its steps changed by `edit` (to show a case the trace does not hold)."""

    def __init__(self, path, edit):
        super().__init__(str(path))
        self.edit = edit

    def load(self, progress):
        super().load(progress)
        self.trace = dataclasses.replace(self.trace, steps=tuple(self.edit(s) for s in self.trace.steps))


def tiny_app(tiny, **config):
    from engine import SpecConfig

    config.setdefault("max_new_tokens", 24)
    return SpecDecApp(config=SpecConfig(verifier=tiny["verifier"], drafter=tiny["drafter"], **config))


# ---- misleading numbers -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_theory_verdict_follows_one_rule():
    app = SpecDecApp(replay=str(DATA / "greedy.jsonl"))
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "n")
        # Nearly every draft kept, a drafter at c = 0.6: the formula says k = 16 pays.
        stats = Stats(steps=10, drafted=160, accepted=158, new_tokens=168, verifier_calls=10, wall_s=10.0,
                      draft_s=0.6 * 16 * 10 * 0.1, verify_s=10 * 0.1)
        snap = dataclasses.replace(app.view.snap.upto(1), stats=stats, block_size=16)
        snap = dataclasses.replace(snap, steps=tuple(dataclasses.replace(s, block_size=16) for s in snap.steps))
        app.query_one(StatsPanel).expert = True  # the formula's verdict is in the full stats (m)
        app.query_one(StatsPanel).show(snap)
        await pilot.pause()
        shown = stats_text(app)
        assert snap.theory.best_k > 0 and snap.theory.cost_ratio > 0.5
        assert "no speed-up" not in shown and "cannot pay" not in shown
        assert f"best k={snap.theory.best_k}" in shown or "is the best block size" in shown


@pytest.mark.anyio
async def test_the_draft_row_shows_the_drafters_probability_not_a_greedy_point_mass():
    def greedy_draft(step):
        positions = list(step.positions)
        first = positions[0]
        top = (Alternative(first.draft_id, first.draft_piece, 0.174),)
        positions[0] = dataclasses.replace(first, q_drafter=1.0, draft_top=top)
        return dataclasses.replace(step, positions=tuple(positions), draft_mode="greedy")

    app = SpecDecApp(driver=EditedReplay(DATA / "greedy.jsonl", greedy_draft))
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "n")
        q_line = text(app.query_one(DraftRow)).splitlines()[1]
        assert q_line.split()[1] == "0.17"  # greedy verification uses no q: the inspector's 17.4%, for information
        await press(pilot, "question_mark")
        assert "a greedy draft is a sure pick, so its q is 1" in " ".join(screen_text(app).split())


@pytest.mark.anyio
async def test_accepted_drafts_have_a_scale_from_0_to_k():
    app = SpecDecApp(replay=str(DATA / "greedy.jsonl"))
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "n")  # the first step kept 0/4
        shown = stats_text(app)
        assert "len 0  1  2  3  4" in shown  # a histogram over 0..k, not a sparkline scaled to its own max
        await press(pilot, "a")
        plot = stats_text(app).splitlines()
        bars = [line for line in plot if "┤" in line or line.startswith("   │")]
        assert bars[0].startswith("  5┤") and "█" not in bars[0]  # one token of at most 5: a low bar


@pytest.mark.anyio
async def test_stats_show_r_c_the_formula_and_the_histogram(tiny):
    app = tiny_app(tiny, block_size=3, draft_mode="greedy")
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "n", "n", "n", "m")  # m: the full stats
        assert app.view.snap.plain_step_s > 0  # one plain decoding step, measured after loading
        shown = stats_text(app)
        assert "r=" in shown and "(live steps; b: no pauses)" in shown
        assert "tok/call / (r + k c) = " in shown
        assert "accepted drafts per step (0..k)" in shown and "len 0  1  2  3" in shown
        await press(pilot, "b")  # the speed check: c and r from a run without pauses, in plain steps of that run
        check = app.view.snap.speed_check
        assert "(timed by b, no pauses)" in stats_text(app)
        r = (check.stats.verify_s / check.stats.verifier_calls) / check.plain_step_s
        assert app.view.snap.theory.verify_cost_ratio == pytest.approx(r)
        assert f"speed-up {check.speedup:.2f}x" in stats_text(app)
        await press(pilot, "plus")
        assert "k=4 from the next step" in stats_text(app)


# ---- sampling verification explained ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_sampling_rejection_says_u_over_p_q_and_the_residual():
    app = SpecDecApp(replay=str(DATA / "sampling.jsonl"))
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "n", "n", "n")  # step 3 rejects its first draft
        row = app.query_one(ComparisonRow)
        assert "✗ REJECTED" in text(row) and "MISMATCH" not in text(row)
        assert "u < min(1, p(x)/q(x))" in row.border_title
        assert "drawn from max(0, p−q)" in text(row)


@pytest.mark.anyio
async def test_the_inspector_shows_the_residual_at_a_sampling_rejection(tiny):
    app = tiny_app(tiny, block_size=4, verify="sampling", draft_mode="sampled", max_new_tokens=60)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for _ in range(20):
            await press(pilot, "n")
            step = app.view.snap.latest
            rejected = [p for p in step.positions if p.residual_top]
            if rejected:
                break
        assert rejected, "no rejection in 20 sampled steps"
        assert rejected[0].residual_prob is not None
        for _ in range(rejected[0].index):
            await press(pilot, "right")
        inspector = app.query_one(PositionInspector)
        assert "leftover top-5" in text(inspector) and "REJECTED" in inspector.border_title


# ---- sizes --------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_80x24_shows_every_column_up_to_k_8_the_help_key_and_a_pane_toggle(tiny):
    app = tiny_app(tiny, block_size=8, draft_mode="greedy")
    async with app.run_test(size=(80, 24)) as pilot:
        await press(pilot, "n")
        screen = screen_text(app)
        p_draft = next(line for line in screen.splitlines() if "p(draft)" in line)
        assert "bonus" in p_draft  # the ninth column (k + 1) is on screen
        footer = screen.splitlines()[-1]
        assert "? Help" in footer and "q Quit" in footer
        assert not app.query_one(StepLog).display or not app.query_one("#bottom").display
        await press(pilot, "w", "w")  # context -> stats -> step log
        assert app.query_one("#bottom").display and app.query_one(StepLog).display
        assert app.query_one(StepLog).row_count == 1
        await press(pilot, "w")
        assert app.query_one(PositionInspector).display and not app.query_one(StepLog).display


@pytest.mark.anyio
async def test_too_small_a_terminal_says_so():
    app = SpecDecApp(replay=str(DATA / "greedy.jsonl"))
    async with app.run_test(size=(40, 12)) as pilot:
        await press(pilot, "n")
        assert "terminal too small" in screen_text(app)
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert "terminal too small" not in screen_text(app)


# ---- cut-off and stale text ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_step_log_marks_cut_text_and_the_browsed_step():
    app = SpecDecApp(replay=str(DATA / "greedy.jsonl"))
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "n", "n", "n", "n", "n", "n")
        log = app.query_one(StepLog)
        cells = [str(log.get_row_at(i)[5]) for i in range(log.row_count)]  # after "acc so far"
        long = [c for c, s in zip(cells, app.view.snap.steps) if len(s.emitted_text) > 20]
        assert long and all(c.endswith("…") for c in long)
        assert not log.show_cursor
        await press(pilot, "left_square_bracket")
        assert log.show_cursor and log.cursor_row == log.row_count - 1


@pytest.mark.anyio
async def test_the_header_stops_saying_playing_at_the_end_and_keeps_it_visible():
    app = SpecDecApp(replay=str(DATA / "greedy.jsonl"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("space")  # 0.3 s between steps
        assert app.sub_title.startswith("▶ playing")  # first, so a narrow header never cuts it
        for _ in range(100):
            await settle(pilot)
            if app.view.finished:
                break
            await pilot.pause(0.05)
        await settle(pilot)
        assert "playing" not in app.sub_title


@pytest.mark.anyio
async def test_drafter_top5_lists_only_tokens_it_could_draw():
    app = SpecDecApp(replay=str(DATA / "greedy.jsonl"))
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "n", "n", "n", "n", "n")
        shown = text(app.query_one(PositionInspector))
        assert "▸·the" in shown and "<repo_name>" not in shown and "<|im_start|>" not in shown


@pytest.mark.anyio
async def test_help_has_a_legend_of_every_colour_and_short_word():
    app = SpecDecApp(replay=str(DATA / "greedy.jsonl"))
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        shown = text(app.screen.query_one("#help-text"))
        for word in ("✓ ACCEPT", "✓ ok", "✗ MISMATCH", "✗ no", "+ BONUS", "= PLAIN", "· discarded", "■ past end",
                     "correction", "newest step"):
            assert word in shown, word


@pytest.mark.anyio
async def test_a_replay_offers_only_what_it_can_do():
    app = SpecDecApp(replay=str(DATA / "greedy.jsonl"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        footer = screen_text(app).splitlines()[-1]
        for hidden in ("b Baseline", "g Draft", "p Prompt", "d Drafter"):
            assert hidden not in footer
        assert "n Step" in footer
        await press(pilot, "question_mark")
        shown = text(app.screen.query_one("#help-text"))
        assert "edit the prompt" not in shown and "baseline" not in shown
        await press(pilot, "escape", "space")
        for _ in range(100):
            await settle(pilot)
            if app.view.finished:
                break
        await settle(pilot)
        assert "edit the prompt" not in app.query_one(StatusBar).message.plain


# ---- prompts ------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_prompt_takes_several_lines_and_escape_restores_the_running_one(tiny):
    app = tiny_app(tiny)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("p")
        bar = app.query_one(PromptBar)
        bar.value = "def add(a, b):"
        bar.move_cursor((0, len(bar.value)))
        await pilot.press("ctrl+j", "r", "e", "t", "enter")
        await settle(pilot)
        assert app.driver.session.prompt == "def add(a, b):\nret"
        assert bar.outer_size.height >= 2 + 2  # both lines and the border stay visible
        await pilot.press("p", "x", "y", "z")
        assert bar.value.endswith("xyz") or "xyz" in bar.value
        await pilot.press("escape")
        await pilot.pause()
        assert bar.value == "def add(a, b):\nret" and app.focused is None
        assert "cancelled" in app.query_one(StatusBar).message.plain


# ---- command line -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", [["--json"], ["--trace", "t.jsonl"], ["--compare-baseline"], ["--sweep", "1-2"]])
def test_headless_options_without_headless_are_refused(option, capsys, monkeypatch):
    monkeypatch.setattr(SpecDecApp, "run", lambda self: pytest.fail("the UI started"))
    assert main(option) == 2
    assert "--headless" in capsys.readouterr().err


def test_replay_of_a_missing_trace_exits_2_before_the_ui(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(SpecDecApp, "run", lambda self: pytest.fail("the UI started"))
    assert main(["--replay", str(tmp_path / "missing.jsonl")]) == 2
    assert "no such trace file" in capsys.readouterr().err


# ---- what users of a visualizer expect ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_x_saves_a_picture_of_the_screen(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = SpecDecApp(replay=str(DATA / "greedy.jsonl"))
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "n", "x")
        pictures = list(tmp_path.glob("specdec-screen-*.svg"))
        assert len(pictures) == 1 and "<svg" in pictures[0].read_text()
        assert str(pictures[0].name) in app.query_one(StatusBar).message.plain


@pytest.mark.anyio
async def test_the_command_palette_lists_the_apps_actions():
    from textual.command import CommandPalette

    app = SpecDecApp(replay=str(DATA / "greedy.jsonl"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Step (n)" in titles and not any(t.startswith("Baseline") for t in titles)  # a replay has no models
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)


# ---- start-up -----------------------------------------------------------------------------------------------


class SlowLoad(ReplayDriver):
    """A load with one long silent phase, like dequantizing a GGUF on the first start; the test ends it."""

    def __init__(self, path):
        super().__init__(path)
        import threading

        self.release = threading.Event()

    def load(self, progress):
        progress("model.gguf: dequantizing GGUF (first start only)", 0.1)
        assert self.release.wait(20)
        super().load(progress)


@pytest.mark.anyio
async def test_a_long_silent_loading_phase_shows_elapsed_time_not_a_stuck_percentage():
    from textual.widgets import Label, ProgressBar

    driver = SlowLoad(str(DATA / "greedy.jsonl"))
    app = SpecDecApp(driver=driver)
    async with app.run_test(size=(120, 40)) as pilot:
        label = ""
        for _ in range(60):  # the bar turns indeterminate 2 s after the last message
            await pilot.pause(0.25)
            label = str(app.query_one("#loading-label", Label).content)
            if label.rstrip().endswith(" s"):
                break
        assert "dequantizing GGUF" in label and label.rstrip().endswith(" s")
        assert app.query_one("#loading-bar", ProgressBar).total is None  # indeterminate, not "10%" for a minute
        driver.release.set()
        await settle(pilot)
        assert app.scheduler.ready


def test_an_unknown_drafter_fails_fast_without_a_network(monkeypatch, capsys):
    import time

    from engine.models.hub import hub_reachable

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # as a user's shell has it: transformers would retry
    if hub_reachable():
        pytest.skip("this machine reaches the hub")
    start = time.monotonic()
    code = main(["--headless", "--verifier", "bogus-model-xyz", "--max-new-tokens", "2"])
    assert code == 2 and "cannot be reached" in capsys.readouterr().err
    assert time.monotonic() - start < 10  # was ~40 s of network retries


@pytest.mark.anyio
@pytest.mark.parametrize("prompt, title", [("x = 1\nx = 1\nx = 1\nx = 1", "Draft block (lookup: copied from earlier in the text)"),
                                           ("print(", "Draft block (drafted by the head)")])
async def test_the_draft_row_says_which_part_of_ngram_plus_head_drafted(tiny, tiny_head, prompt, title):
    from engine import SpecConfig

    config = SpecConfig(verifier=tiny["verifier"], drafter=f"ngram+head:{tiny_head[0]}", max_new_tokens=24)
    app = SpecDecApp(config=config, prompt=prompt)
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "n")
        assert app.snap.steps[0].drafted_by in title
        assert app.query_one(DraftRow).border_title == title
        await press(pilot, "r")  # no step shown: the plain title again
        assert app.query_one(DraftRow).border_title == DraftRow.TITLE
