"""What a person sees, kept stable: replayed traces (recorded from SmolLM2-135M), so no model or torch is needed."""

from pathlib import Path

from specdec_tui.app import SpecDecApp

DATA = Path(__file__).parent.parent / "data"


def replay(name: str = "greedy.jsonl") -> SpecDecApp:
    return SpecDecApp(replay=str(DATA / name))


async def settle(pilot) -> None:
    # pilot.press does not wait for thread workers: wait for the step itself, then for the screen.
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()


def keys(*pressed: str):
    async def run_before(pilot) -> None:
        await settle(pilot)
        for key in pressed:
            await pilot.press(key)
            await settle(pilot)

    return run_before


def test_start_screen(snap_compare):
    assert snap_compare(replay(), run_before=keys(), terminal_size=(120, 40))


def test_after_one_step(snap_compare):
    assert snap_compare(replay(), run_before=keys("n"), terminal_size=(120, 40))


def test_after_several_steps_with_mismatch_and_bonus(snap_compare):
    # Steps 1-4 of the greedy trace hold both full acceptance with a bonus and a mismatch.
    assert snap_compare(replay(), run_before=keys("n", "n", "n", "n", "n"), terminal_size=(120, 40))


def test_sampling_mode_shows_p_over_q_and_draws(snap_compare):
    assert snap_compare(replay("sampling.jsonl"), run_before=keys("n", "n", "n"), terminal_size=(120, 40))


def test_help_screen(snap_compare):
    assert snap_compare(replay(), run_before=keys("question_mark"), terminal_size=(120, 40))


def test_error_message_for_a_missing_trace(snap_compare):
    assert snap_compare(SpecDecApp(replay="/nonexistent/trace.jsonl"), run_before=keys(), terminal_size=(120, 40))


def test_small_terminal(snap_compare):
    assert snap_compare(replay(), run_before=keys("n", "n", "n"), terminal_size=(80, 24))


def test_position_inspector_shows_both_top5_lists(snap_compare):
    assert snap_compare(replay(), run_before=keys("n", "n", "n", "n", "left", "right"), terminal_size=(120, 40))


def test_browsing_an_earlier_step(snap_compare):
    # Five steps, then back to step 3: the panels show step 3 as it was (one mismatch, context up to it).
    assert snap_compare(replay(), run_before=keys("n", "n", "n", "n", "n", "left_square_bracket", "left_square_bracket"),
                        terminal_size=(120, 40))


def test_light_theme_keeps_chips_legible(snap_compare):
    async def run_before(pilot) -> None:
        pilot.app.theme = "textual-light"
        await keys("n", "n", "n", "n")(pilot)

    assert snap_compare(replay(), run_before=run_before, terminal_size=(120, 40))


def test_small_terminal_step_log_pane(snap_compare):
    # 80x24: the chips take the full width; `w` shows the step log in the pane under them.
    assert snap_compare(replay(), run_before=keys("n", "n", "n", "w", "w"), terminal_size=(80, 24))


def test_wide_terminal(snap_compare):
    assert snap_compare(replay(), run_before=keys("n", "n", "n", "n", "n"), terminal_size=(200, 50))


def test_too_small_terminal(snap_compare):
    assert snap_compare(replay(), run_before=keys("n"), terminal_size=(40, 12))


def test_acceptance_plot(snap_compare):
    # m: the full stats (the chart lives there), a: the acceptance plot instead of the histogram.
    assert snap_compare(replay(), run_before=keys("n", "n", "n", "n", "n", "n", "m", "a"), terminal_size=(120, 40))


def test_full_stats_view(snap_compare):
    # Issue 26: the plain stats by default; m shows c, r, the formula, per-position acceptance and the histogram.
    assert snap_compare(replay(), run_before=keys("n", "n", "n", "n", "m"), terminal_size=(120, 40))


def test_guided_start(snap_compare):
    # h (and the first launch) opens the guide's first panel; at 80x24 it must fit.
    assert snap_compare(replay(), run_before=keys("h"), terminal_size=(80, 24))


def test_tree_step_with_a_node_inspected(snap_compare):
    # 120x40: the tree under the chip rows, the second node inspected (its drafter and verifier top-5 side by side).
    assert snap_compare(replay("tree.jsonl"), run_before=keys("n", "right"), terminal_size=(120, 40))


def test_small_terminal_tree_step_inspector_pane(snap_compare):
    # 80x24: a tree step takes the chip rows' place, so the inspector pane under it has room.
    assert snap_compare(replay("tree.jsonl"), run_before=keys("n", "right", "w", "w", "w"), terminal_size=(80, 24))
