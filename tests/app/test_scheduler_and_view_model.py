"""The scheduler and the view model without an app: queued steps, restarts, stale results, browsing."""

from dataclasses import replace
from pathlib import Path

from engine import SpecConfig, Stats
from engine.records.trace import read_trace
from specdec_tui import operations as ops
from specdec_tui.scheduler import Scheduler
from specdec_tui.view_model import Snapshot, ViewModel

DATA = Path(__file__).parent.parent / "data"


def ready_scheduler() -> Scheduler:
    scheduler = Scheduler()
    scheduler.ready = True
    return scheduler


def test_nothing_starts_before_loading_or_while_busy():
    scheduler = Scheduler()
    scheduler.submit(ops.Step())
    assert scheduler.next() is None  # still loading
    scheduler.ready = True
    running = scheduler.start(scheduler.next())
    scheduler.submit(ops.Step())
    assert scheduler.busy and scheduler.next() is None and scheduler.queued_steps == 1
    assert scheduler.finish(running)
    assert isinstance(scheduler.next(), ops.Step)


def test_steps_queued_while_busy_run_in_order_one_at_a_time():
    scheduler = ready_scheduler()
    first = scheduler.start(ops.Step())
    for _ in range(3):
        scheduler.submit(ops.Step())
    scheduler.submit(ops.Save())
    assert scheduler.queued_steps == 3
    started = []
    ticket = first
    while True:
        assert scheduler.finish(ticket)
        operation = scheduler.next()
        if operation is None:
            break
        started.append(type(operation).__name__)
        ticket = scheduler.start(operation)
    assert started == ["Step", "Step", "Step", "Save"]


def test_reset_while_stepping_voids_the_running_step_and_the_queued_ones():
    scheduler = ready_scheduler()
    running = scheduler.start(ops.Step())
    scheduler.submit(ops.Step())
    scheduler.submit(ops.Baseline())
    scheduler.submit(ops.Reset("hello"))
    assert list(scheduler.queue) == [ops.Reset("hello"), ops.Baseline()]  # the reset first, the queued step gone
    assert scheduler.finish(running) is False  # the step that was running is stale: its result is dropped
    assert scheduler.next() == ops.Reset("hello")


def test_a_second_restart_replaces_the_first():
    scheduler = ready_scheduler()
    running = scheduler.start(ops.Step())
    scheduler.submit(ops.Reset("a"))
    scheduler.submit(ops.SwitchDrafter("ngram", "a"))
    assert list(scheduler.queue) == [ops.SwitchDrafter("ngram", "a")]
    assert not scheduler.finish(running)
    restart = scheduler.start(scheduler.next())
    assert scheduler.finish(restart)  # started after the last restart: current


def test_steps_after_the_end_are_dropped_and_failures_drop_queued_steps():
    scheduler = ready_scheduler()
    scheduler.submit(ops.Step())
    scheduler.submit(ops.Save())
    assert scheduler.next(finished=True) == ops.Save()
    scheduler.submit(ops.Step())
    scheduler.submit(ops.Step())
    scheduler.drop_steps()
    assert scheduler.queued_steps == 0


def test_operations_know_their_label_and_driver_call():
    calls = []

    class Recorder:
        def step(self, changes):
            calls.append(("step", changes))

        def reset(self, prompt):
            calls.append(("reset", prompt))

        def switch_drafter(self, spec, prompt):
            calls.append(("drafter", spec, prompt))

    ops.Step({"block_size": 3}).run(Recorder(), None)
    ops.Reset("p").run(Recorder(), None)
    ops.SwitchDrafter("ngram", "p").run(Recorder(), None)
    assert calls == [("step", {"block_size": 3}), ("reset", "p"), ("drafter", "ngram", "p")]
    assert {op.label for op in (ops.Step(), ops.Reset(""), ops.Baseline(), ops.Save())} == {
        "stepping", "resetting", "timing plain and speculative decoding", "saving"}


def replay_snapshot() -> Snapshot:
    trace = read_trace(DATA / "greedy.jsonl")
    return Snapshot(tuple(trace.prompt_pieces), trace.steps, Stats.from_steps(trace.steps), "max_new_tokens",
                    4, SpecConfig.from_dict(trace.header["config"]), baseline_note="identical")


def test_snapshot_upto_is_the_run_as_it_was_and_cleared_is_a_reset():
    snap = replay_snapshot()
    early = snap.upto(3)
    assert early.steps == snap.steps[:3] and early.stats == Stats.from_steps(snap.steps[:3])
    assert early.finished is None and early.baseline_note is None  # both belong to the whole run
    assert snap.upto(len(snap.steps)) is snap
    cleared = snap.cleared(("new prompt",))
    assert cleared.steps == () and cleared.stats == Stats() and cleared.prompt_pieces == ("new prompt",)
    assert cleared.config == snap.config


def test_view_model_browses_selects_and_holds_pending_settings():
    view = ViewModel()
    view.show(replay_snapshot())
    assert view.browse(-2) == len(view.snap.steps) - 3
    assert view.shown().stats.steps == len(view.snap.steps) - 2
    assert view.browse(+5) is None and view.shown() is view.snap
    assert view.select(99) == len(view.snap.latest.positions) - 1 and view.select(-3) == 0
    view.pending["block_size"] = 6
    assert view.next_block_size == 6 and view.config.block_size == 6
    assert view.take_pending() == {"block_size": 6} and view.next_block_size == 4


def test_auto_play_asks_for_a_step_only_when_playing_idle_and_not_finished():
    scheduler = ready_scheduler()
    assert scheduler.play_delay(finished=False) is None  # paused
    scheduler.play.on = True
    assert scheduler.play_delay(finished=False) == 0.3  # the default pause
    assert scheduler.play.slower() == 1.0 and scheduler.play.slower() == 0.0
    assert scheduler.play_delay(finished=False) == 0.01  # never a 0 s timer
    assert scheduler.play_delay(finished=True) is None
    scheduler.start(ops.Step())
    assert scheduler.play_delay(finished=False) is None  # busy: the outcome asks again
    scheduler.submit(ops.Step())
    scheduler.stop()
    assert not scheduler.play.on and scheduler.queued_steps == 0


def test_a_k_chosen_by_hand_turns_auto_off_and_k_stays_in_range():
    view = ViewModel()
    snap = replay_snapshot()
    view.show(replace(snap, config=snap.config.replace(block_size_schedule="auto", tree="auto")))
    text, refused = view.change_block_size(+1)
    assert not refused and text == "block size k=5 from the next step (fixed: auto off)"
    assert view.pending == {"block_size": 5, "block_size_schedule": "constant", "tree": None}
    text, refused = view.change_block_size(-10)
    assert refused and "stays 5" in text and view.next_block_size == 5


def test_e_switches_between_a_chain_and_the_last_tree_shape():
    view = ViewModel()
    view.show(replay_snapshot())  # a chain run with a fixed k
    assert view.toggle_tree() == "3,2,1,1"  # no --tree given: the default shape
    assert view.toggle_tree() is None and view.toggle_tree() == "3,2,1,1"
    view = ViewModel()
    snap = replay_snapshot()
    view.show(replace(snap, config=snap.config.replace(block_size_schedule="auto", tree="auto")))
    assert view.toggle_tree() is None and view.toggle_tree() == "auto"
    view.change_block_size(+1)  # k by hand: auto off, a chain
    assert view.toggle_tree() == "3,2,1,1"  # --tree auto needs -k auto: a fixed k gets a fixed tree


def test_on_a_tree_step_the_selection_walks_nodes_and_a_click_picks_a_path_node():
    trace = read_trace(DATA / "tree.jsonl")
    steps = trace.steps[:1]  # the recorded step whose path kept a draft
    snap = Snapshot(tuple(trace.prompt_pieces), steps, Stats.from_steps(steps), None, 3,
                    SpecConfig.from_dict(trace.header["config"]))
    view = ViewModel()
    view.show(snap)
    tree = snap.latest.tree
    assert tree.path
    off_path = next(i for i, node in enumerate(tree.drawn_order()) if node not in tree.path)
    view.select(off_path)
    selection = view.selection()
    assert selection.node == tree.drawn_order()[off_path] and selection.column == -1
    view.click(0)
    assert view.selection().node == tree.path[0] and view.selection().column == 0


def test_a_replay_refuses_configuring_and_timing_keys_with_the_reason():
    from specdec_tui.bindings import NEEDS, refusal

    assert refusal("block_size", can_configure=False, has_models=False).startswith("this is a replay")
    assert "needs the models" in refusal("baseline", can_configure=False, has_models=False)
    assert refusal("block_size", can_configure=True, has_models=True) is None
    assert all(refusal(action, False, False) is None for action, need in NEEDS.items() if need is None)
