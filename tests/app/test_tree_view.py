"""The tree view: drawn from a recorded tree step (SmolLM2, --tree 3,2,1,1), hidden for chains, `e` toggles."""

from dataclasses import replace
from pathlib import Path

import pytest

from conftest import settle
from engine import Decision
from engine.records.trace import read_trace
from specdec_tui.app import SpecDecApp
from specdec_tui.widgets.tree_view import TreeView, tree_lines

DATA = Path(__file__).parent.parent / "data"


def tree_step():
    return read_trace(DATA / "tree.jsonl").steps[0]


def test_one_line_per_node_under_the_context():
    result = tree_step()
    tree = result.tree
    lines = [line.plain for line in tree_lines(tree)]
    assert len(lines) == len(tree.nodes) + 1
    assert lines[0].startswith("context")
    # Depth-first: each node's line is indented by its depth, its children follow it.
    marks = {Decision.ACCEPTED: "✓", Decision.REJECTED: "✗", Decision.NOT_REACHED: "·", Decision.STOPPED: "■"}
    drawn = [line for line in lines[1:]]
    assert sorted(line.lstrip("│├└─ ")[0] for line in drawn) == sorted(marks[n.decision] for n in tree.nodes)
    assert sum(line.count("✓") for line in drawn) == len(tree.path)


def test_pieces_are_shown_literally():
    result = tree_step()
    node = replace(result.tree.nodes[0], piece="[bold]x[/bold]", verifier_piece="[red]")
    tree = replace(result.tree, nodes=(node,) + result.tree.nodes[1:])
    text = "\n".join(line.plain for line in tree_lines(tree))
    assert "[bold]x[/bold]" in text.replace("·", " ") and "[red]" in text


@pytest.mark.anyio
async def test_the_tree_view_shows_tree_steps_only():
    app = SpecDecApp(replay=str(DATA / "tree.jsonl"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert not app.query_one(TreeView).display  # nothing stepped yet
        await pilot.press("n")
        await settle(pilot)
        view = app.query_one(TreeView)
        assert view.display and "nodes verified in one pass" in view.border_title
        assert "tree 3,2,1,1" in app.sub_title
    app = SpecDecApp(replay=str(DATA / "greedy.jsonl"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        assert not app.query_one(TreeView).display


@pytest.mark.anyio
async def test_e_switches_between_chain_and_tree(tiny):
    from engine import SpecConfig

    app = SpecDecApp(config=SpecConfig(verifier=tiny["verifier"], drafter="early-exit:2", draft_mode="greedy",
                                       max_new_tokens=24))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        assert app.snap.steps[-1].tree is None and not app.query_one(TreeView).display
        await pilot.press("e", "n")
        await settle(pilot)
        assert app.snap.steps[-1].tree is not None and app.snap.steps[-1].tree.shape == "3,2,1,1"
        assert app.query_one(TreeView).display
        # What the branches cost: a verify pass over the 21 nodes + 1, against the chain of depth 4 (+ 1), measured.
        assert [tokens for tokens, _ in app.snap.tree_pass_s] == [22, 5]
        assert all(seconds > 0 for _, seconds in app.snap.tree_pass_s)
        await pilot.press("m")  # the full stats
        assert "verify r " in str(app.query_one("#stats-text").render())
        await pilot.press("e", "n")
        await settle(pilot)
        assert app.snap.steps[-1].tree is None
        assert app.snap.stats.tree_steps == 1 and app.snap.stats.steps == 3
        assert "verify r " not in str(app.query_one("#stats-text").render())  # the tree's costs left with the tree


@pytest.mark.anyio
async def test_left_right_walk_the_tree_nodes_and_the_inspector_follows():
    """In a tree step ←/→ select nodes in drawn order; the inspector shows the drafter's top-5 at the node's parent
    beside the verifier's top-5 at that same slot, and the tree marks the inspected node."""
    from specdec_tui.widgets.position_inspector import PositionInspector

    app = SpecDecApp(replay=str(DATA / "tree.jsonl"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        tree = app.snap.steps[-1].tree
        order = tree.drawn_order()
        assert sorted(order) == list(range(len(tree.nodes)))
        inspector, view = app.query_one(PositionInspector), app.query_one(TreeView)
        for step in range(len(order) + 2):  # walking past the last node stays on it
            selected = order[min(step, len(order) - 1)]
            node = tree.nodes[selected]
            assert f"node {min(step, len(order) - 1) + 1}/{len(order)} (depth {node.depth})" in inspector.border_title
            shown = str(inspector.render())
            top_piece = node.draft_top[0].piece.strip() if node.draft_top else ""
            assert top_piece in shown
            _, _, _, verifier_top = tree.verifier_before(node)
            assert verifier_top[0].piece.strip() in shown
            marked = [line for line in str(view.render()).splitlines() if "◀ inspected" in line]
            assert len(marked) == 1 and node.piece.strip() in marked[0]
            await pilot.press("right")
            await settle(pilot)


@pytest.mark.anyio
async def test_the_inspected_node_stays_in_view_on_a_small_terminal():
    app = SpecDecApp(replay=str(DATA / "tree.jsonl"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        view = app.query_one(TreeView)
        nodes = len(app.snap.steps[-1].tree.nodes)
        await pilot.press(*["right"] * (nodes - 1))  # the last node, far below the box's first lines
        await settle(pilot)
        shown = str(view.render()).splitlines()
        assert len(shown) < nodes + 1 and "◀ inspected" in shown[-1]  # a window ending on the last node
        assert view.border_subtitle.endswith(f"of {nodes + 1} (←/→)")
