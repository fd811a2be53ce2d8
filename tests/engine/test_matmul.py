"""Few-row products (engine/forward/matmul.py): every layout computes the same product, the choice is made once
per row count, and SPECDEC_MATMUL pins it (the suite pins `linear`: conftest)."""

import pytest
import torch
import torch.nn.functional as F

from engine.forward import matmul


@pytest.fixture
def fresh_plan(monkeypatch):
    monkeypatch.setattr(matmul, "_LAYOUT", {})
    return matmul._LAYOUT


@pytest.mark.parametrize("rows", [1, 2, 5, 17, 33])
def test_every_layout_computes_the_same_product(fresh_plan, rows):
    torch.manual_seed(rows)
    x, weight = torch.randn(rows, 64), torch.randn(96, 64)
    linear = matmul.linear(x, weight)
    torch.testing.assert_close(linear, F.linear(x, weight), rtol=0, atol=0)
    for layout in matmul.layouts_for(rows)[1:]:
        fresh_plan[rows] = layout
        other = matmul.linear(x, weight)
        assert other.shape == (rows, 96)
        torch.testing.assert_close(other, F.linear(x, weight), rtol=1e-5, atol=1e-5)  # not bitwise: another kernel


def test_one_row_may_be_computed_as_two():
    assert matmul.PADDED in matmul.layouts_for(1) and matmul.PADDED not in matmul.layouts_for(2)


def test_planning_times_each_row_count_once_and_skips_prompt_sized_passes(fresh_plan, monkeypatch):
    monkeypatch.delenv("SPECDEC_MATMUL", raising=False)
    weights = [torch.randn(128, 64) for _ in range(2)]
    matmul.plan(4, weights, repeats=1)
    assert set(fresh_plan) == {4} and fresh_plan[4] in (matmul.LINEAR, matmul.W_FIRST)
    fresh_plan[4] = matmul.PADDED  # a marker no plan of 4 rows would choose
    matmul.plan(4, weights, repeats=1)  # planned already: not timed again
    matmul.plan(200, weights, repeats=1)  # a prompt: a proper matrix product, not planned
    assert set(fresh_plan) == {4} and matmul.planned()[4] == matmul.PADDED
    matmul.plan(1, weights, repeats=1)
    assert fresh_plan[1] in matmul.layouts_for(1)


@pytest.mark.parametrize("value, layout", [("w-first", "W @ x.T"), ("linear", "x @ W.T"), (" LINEAR ", "x @ W.T")])
def test_the_environment_pins_the_layout_without_timing(fresh_plan, monkeypatch, value, layout):
    monkeypatch.setenv("SPECDEC_MATMUL", value)
    matmul.plan(3, [torch.randn(8, 8)])
    matmul.plan(1, [torch.randn(8, 8)])
    assert fresh_plan == {3: layout, 1: layout}


def test_an_unknown_pin_is_ignored(monkeypatch):
    monkeypatch.setenv("SPECDEC_MATMUL", "fastest")
    assert matmul.forced_layout() is None
