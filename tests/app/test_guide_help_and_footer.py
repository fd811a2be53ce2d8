"""Issue 26 (app side): the guided start, help, two levels of stats, the footer, and the smaller defects a newcomer
met; each test fails without its fix."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rich.cells import cell_len

from conftest import settle
from engine import Decision, SpecConfig, Source, Stats, Token
from specdec_tui.app import SpecDecApp
from specdec_tui.driver import ReplayDriver
from specdec_tui.widgets.context_view import CONTROL_STYLE, ContextView
from specdec_tui.widgets.draft_row import DraftRow
from specdec_tui.widgets.guide_screen import GuideScreen, seen_file
from specdec_tui.widgets.help_screen import HelpScreen
from specdec_tui.widgets.narration_line import NarrationLine
from specdec_tui.widgets.prompt_bar import PromptBar
from specdec_tui.widgets.stats_panel import StatsPanel
from specdec_tui.widgets.status_bar import StatusBar
from specdec_tui.widgets.step_log import StepLog
from specdec_tui.widgets.verifier_row import VerifierRow

DATA = Path(__file__).parent.parent / "data"


def status(app) -> str:
    return app.query_one(StatusBar).message.plain


def text(widget) -> str:
    content = getattr(widget, "content", None)
    return content.plain if hasattr(content, "plain") else str(content)


def stats_lines(app) -> list[str]:
    return str(app.query_one("#stats-text").render()).splitlines()


async def press(pilot, *keys) -> None:
    await settle(pilot)
    for key in keys:
        await pilot.press(key)
        await settle(pilot)


class EditedReplay(ReplayDriver):
    def __init__(self, path, edit):
        super().__init__(str(path))
        self.edit = edit

    def load(self, progress):
        super().load(progress)
        self.trace = dataclasses.replace(self.trace, steps=tuple(self.edit(s) for s in self.trace.steps))


class SlowLoad(ReplayDriver):
    """A replay whose loading waits for the test: keys pressed while 'the models load'."""

    def __init__(self, path):
        super().__init__(str(path))
        self.gate = threading.Event()

    def load(self, progress):
        self.gate.wait(10)
        super().load(progress)


# -- the guided start and help ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_guide_shows_on_a_first_run_and_h_shows_it_again(tmp_path, monkeypatch):
    monkeypatch.delenv("SPECDEC_NO_GUIDE", raising=False)
    monkeypatch.setenv("SPECDEC_CONFIG_DIR", str(tmp_path))
    app = SpecDecApp(replay=str(DATA / "greedy.jsonl"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, GuideScreen)
        titles = []
        for _ in range(4):
            titles.append(app.screen.query_one("#guide-body").border_title)
            await pilot.press("right")
            await pilot.pause()
        assert [t.split("·")[1].strip()[:3] for t in titles] == ["1/4", "2/4", "3/4", "4/4"]
        assert not isinstance(app.screen, GuideScreen) and seen_file().exists()
        await pilot.press("h")
        await pilot.pause()
        assert isinstance(app.screen, GuideScreen)
    second = SpecDecApp(replay=str(DATA / "greedy.jsonl"))
    async with second.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert not isinstance(second.screen, GuideScreen)  # seen: not shown again


@pytest.mark.anyio
async def test_help_opens_focused_plain_explanation_first_with_a_more_below_hint():
    app = SpecDecApp(replay=str(DATA / "greedy.jsonl"))
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        body = app.screen.query_one("#help-body")
        assert app.focused is body
        assert text(app.screen.query_one("#help-text")).startswith("How to read it")
        assert "more below" in body.border_subtitle
        await pilot.press("end")
        await pilot.pause()
        assert body.scroll_y > 0 and "more below" not in body.border_subtitle


# -- stats ---------------------------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("trace", ["greedy.jsonl", "sampling.jsonl", "tree.jsonl"])
async def test_stats_are_plain_by_default_expert_on_m_and_nothing_wraps_at_120x40(trace):
    app = SpecDecApp(replay=str(DATA / trace))
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "n", "n", "n")
        panel = app.query_one(StatsPanel)
        width = app.query_one("#stats-text").content_size.width
        plain = stats_lines(app)
        assert any(line.startswith("accepted so far") for line in plain)
        assert not any("c=" in line or "E[" in line for line in plain)
        assert all(cell_len(line) <= width for line in plain), plain
        await press(pilot, "m")
        assert panel.expert
        expert = stats_lines(app)
        assert any(line.startswith("acceptance ") for line in expert)
        assert all(cell_len(line) <= width for line in expert), expert
        if trace == "tree.jsonl":
            assert any("per accepted path" in line for line in plain + expert)


@pytest.mark.anyio
async def test_the_verdict_says_faster_or_slower_and_what_acceptance_k_needs():
    app = SpecDecApp(replay=str(DATA / "greedy.jsonl"))
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "n", "n", "n", "n")
        shown = "\n".join(stats_lines(app))
        assert "so far " in shown and ("slower" in shown or "faster" in shown or "about even" in shown)
        assert "the drafter is right" in shown and ("it needs about" in shown or "cannot pay" in shown)


@pytest.mark.anyio
async def test_stale_lines_leave_on_a_mode_change():
    app = SpecDecApp(replay=str(DATA / "greedy.jsonl"))
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "n", "n", "m")
        snap = app.view.snap
        wide = Stats(steps=2, drafted=32, accepted=3, new_tokens=5, verifier_calls=2, wall_s=1, draft_s=0.1,
                     verify_s=0.2, per_position_drafted=(2,) * 16, per_position_accepted=(1, 1) + (0,) * 14)
        panel = app.query_one(StatsPanel)
        panel.show(dataclasses.replace(snap, stats=wide), next_block_size=2)
        shown = "\n".join(stats_lines(app))
        assert "position    1    2 \n" in shown and "   16" not in shown  # only up to the k in force
        panel.show(snap, next_block_size=snap.block_size, pending={"tree": "3,2,1,1"})
        shown = "\n".join(stats_lines(app))
        assert "tree 3,2,1,1 from the next step" in shown and "tok/call / (r + k c)" not in shown


# -- the footer, b's one name, the palette ------------------------------------------------------------------------


def footer_keys(app) -> list[str]:
    from textual.widgets._footer import FooterKey

    return [f"{k.key_display} {k.description}" for k in app.query(FooterKey)]


@pytest.mark.anyio
async def test_the_footer_uses_the_width_it_has():
    app = SpecDecApp(replay=str(DATA / "greedy.jsonl"))
    async with app.run_test(size=(200, 50)) as pilot:
        await press(pilot, "n")
        wide = footer_keys(app)
        for entry in ("←/→ Position", "[/] Browse", "a Chart", "x Picture", "m More stats"):
            assert entry in wide, wide
        await pilot.resize_terminal(120, 40)
        await settle(pilot)
        from textual.widgets._footer import FooterKey

        narrow = footer_keys(app)
        assert max(k.region.right for k in app.query(FooterKey)) <= 120 and narrow[0] == "n Step"
        assert len(narrow) > 8  # the row is used, not cut at its right edge
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        assert "w Pane" in footer_keys(app)


def test_b_has_one_name():
    binding = next(b for b in SpecDecApp.BINDINGS if b.id == "baseline")
    assert binding.description == "Speed check" and binding.tooltip.startswith("speed check")
    later = next(b for b in SpecDecApp.BINDINGS if b.id == "browse.later")
    assert "earlier" not in later.tooltip.split("(")[0]  # Ctrl+P's `Later step` no longer says "browse earlier"


# -- loading: failures, keys pressed meanwhile, the drafter checked first -------------------------------------------


@pytest.mark.anyio
async def test_a_failed_load_shows_the_whole_message_and_press_q_to_quit(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    app = SpecDecApp(config=SpecConfig(drafter="HuggingFaceTB/SmolLM2-360M"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        message = text(app.query_one(NarrationLine))
        assert "HuggingFaceTB/SmolLM2-360M" in message and "or pass a local copy" in message  # the whole of it
        assert "press q to quit" in message
        await pilot.press("n")
        assert "still loading" not in status(app) and "press q to quit" in status(app)


@pytest.mark.anyio
async def test_keys_pressed_while_loading_are_queued_and_said():
    driver = SlowLoad(DATA / "greedy.jsonl")
    app = SpecDecApp(driver=driver)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("n")
        assert "1 step(s) queued" in status(app)
        driver.gate.set()
        await settle(pilot)
        await settle(pilot)
        assert app.snap is not None and len(app.snap.steps) == 1  # the queued n ran once the replay was ready


def test_headless_checks_the_drafter_before_loading_the_verifier():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "specdec_tui.cli", "--headless", "--drafter",
                           "HuggingFaceTB/SmolLM2-360M"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2 and "HuggingFaceTB/SmolLM2-360M" in done.stderr
    assert time.monotonic() - start < 5


def test_headless_json_into_head_ends_without_a_traceback():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "specdec_tui.cli", "--headless", "--json", "-k", "1",
                             "--max-new-tokens", "64"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    lines = [proc.stdout.readline() for _ in range(3)]  # `| head -3`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 0 and "Traceback" not in err and all(line.startswith(b"{") for line in lines)


# -- the prompt: Tab, the cursor, a replay's hints --------------------------------------------------------------------


@pytest.mark.anyio
async def test_tab_never_types_into_the_prompt_silently_and_edits_start_at_the_end(tiny):
    app = SpecDecApp(replay=str(DATA / "greedy.jsonl"))
    async with app.run_test(size=(80, 24)) as pilot:
        await press(pilot, "tab")
        assert app.focused is None and "Tab does nothing here" in status(app)
        await press(pilot, "n")
        assert len(app.snap.steps) == 1 and app.query_one(PromptBar).value == app.driver.prompt
    bar_app = SpecDecApp(config=SpecConfig(verifier=tiny["verifier"], drafter="same", max_new_tokens=8))
    async with bar_app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        bar = bar_app.query_one(PromptBar)
        bar_app.action_focus_prompt()
        await pilot.pause()
        assert bar.cursor_location == bar.document.end
        await pilot.press("tab")
        assert "Tab does not leave the prompt" in status(bar_app) and "\t" not in bar.text


@pytest.mark.anyio
async def test_a_replay_shows_no_hints_for_keys_it_refuses():
    app = SpecDecApp(replay=str(DATA / "greedy.jsonl"))
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "n")
        assert "p edits" not in app.query_one(PromptBar).border_title
        assert not any("b:" in line or "speed check" in line for line in stats_lines(app))


# -- what the rows show ---------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_columns_that_do_not_fit_are_marked():
    def wide(step):  # a block of 16 drafts: the trace's positions repeated
        positions = [dataclasses.replace(step.positions[i % len(step.positions)], index=i) for i in range(17)]
        positions = [dataclasses.replace(p, decision=Decision.NOT_REACHED) if p.index else p for p in positions]
        return dataclasses.replace(step, positions=tuple(positions), drafted=16, block_size=16)

    app = SpecDecApp(driver=EditedReplay(DATA / "greedy.jsonl", wide))
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "n")
        for row in (DraftRow, VerifierRow):
            assert "hidden" in app.query_one(row).border_subtitle
            assert "columns" in app.query_one(row).border_subtitle
        assert "1e-…" not in text(app.query_one(VerifierRow))


@pytest.mark.anyio
async def test_a_control_token_from_the_model_is_styled_apart_from_the_same_text_typed():
    def ends_turn(step):
        return dataclasses.replace(step, emitted=(*step.emitted, Token(2, "<|im_end|>", Source.CORRECTION)))

    app = SpecDecApp(driver=EditedReplay(DATA / "greedy.jsonl", ends_turn))
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "n")
        view = app.query_one(ContextView)
        view.show(("<|", "im", "_end", "|>", " hi"), app.snap.steps, None)
        content = view.query_one("#context-text").content
        styles = {content.plain[s.start:s.end]: str(s.style) for s in content.spans}
        assert CONTROL_STYLE in styles["<|im_end|>"]
        assert all(CONTROL_STYLE not in styles.get(piece, "") for piece in ("<|", "im", "_end", "|>"))


@pytest.mark.anyio
async def test_the_step_log_has_acceptance_so_far_and_the_status_counts_tokens():
    app = SpecDecApp(replay=str(DATA / "greedy.jsonl"))
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "n")
        assert "+1 token" in status(app) and "+1 tokens" not in status(app)
        await press(pilot, "n", "n", "n")
        log = app.query_one(StepLog)
        assert [str(c.label) for c in log.columns.values()][3] == "acc so far"
        steps = app.snap.steps
        drafted = accepted = 0
        for i, step in enumerate(steps):
            drafted, accepted = drafted + step.drafted, accepted + step.accepted
            assert str(log.get_row_at(i)[3]) == f"{100 * accepted / drafted:.1f}%"


def test_the_chart_labels_its_acceptance_scale():
    from engine import read_trace
    from specdec_tui.widgets.acceptance_plot import plot_lines

    lines = [line.plain for line in plot_lines(read_trace(str(DATA / "greedy.jsonl")).steps[:3], 40)]
    assert lines[-2].endswith("<25%") and lines[0].endswith("75%+")


def test_sweep_rows_with_the_same_work_get_a_noise_note():
    from specdec_tui.headless import _same_work

    row = {"k": 2, "drafter": "ngram", "acceptance_rate": 0.5, "drafted": 10, "tokens_per_verifier_call": 1.5}
    assert _same_work(dict(row, k=3), [row]) is row
    assert _same_work(dict(row, k=3, drafted=12), [row]) is None


# -- items 2 and 3: out of play after the stop; the inspector says why -------------------------------------------------


@pytest.mark.anyio
async def test_after_the_first_mismatch_the_columns_are_out_of_play():
    from specdec_tui.widgets.comparison_row import ComparisonRow

    app = SpecDecApp(replay=str(DATA / "greedy.jsonl"))
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "n")  # step 1: a mismatch at the first draft
        summary = text(app.query_one(ComparisonRow)).splitlines()[-1]
        assert "■ stops at 1" in summary and "later predictions discarded" in summary
        assert "· discarded" in text(app.query_one(ComparisonRow))
        content = app.query_one(VerifierRow).content
        later = app.snap.steps[0].positions[1].verifier_piece.replace(" ", "·")
        struck = [str(s.style) for s in content.spans if later in content.plain[s.start:s.end]]
        assert struck and all("strike" in style for style in struck)


@pytest.mark.anyio
async def test_the_inspector_lists_the_draft_and_the_pick_even_outside_the_top_5():
    from engine import Alternative
    from specdec_tui.widgets.position_inspector import PositionInspector

    def outside(step):
        first = step.positions[0]
        others = tuple(Alternative(900 + i, f" other{i}", 0.1) for i in range(5))
        return dataclasses.replace(step, positions=(dataclasses.replace(first, draft_top=others, verifier_top=others),
                                                    *step.positions[1:]))

    app = SpecDecApp(driver=EditedReplay(DATA / "greedy.jsonl", outside))
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "n")
        shown = text(app.query_one(PositionInspector))
        first = app.snap.steps[0].positions[0]
        assert shown.startswith("Mismatch: the verifier's first choice is ' the'")
        assert "below its top 5" in shown
        assert f"•{first.draft_piece.replace(' ', '·')}" in shown and f"▸{first.verifier_piece.replace(' ', '·')}" in shown


@pytest.mark.anyio
async def test_at_80x24_the_stats_scroll_with_page_down():
    app = SpecDecApp(replay=str(DATA / "greedy.jsonl"))
    async with app.run_test(size=(80, 24)) as pilot:
        await press(pilot, "n", "n", "n", "n", "w", "m")
        panel = app.query_one(StatsPanel)
        assert panel.max_scroll_y > 0  # the full stats do not fit the pane
        await press(pilot, "pagedown")
        assert panel.scroll_y > 0
