"""Few-row products (engine/forward/matmul.py): either layout computes the same product, the choice is made once
per row count, and SPECDEC_MATMUL pins it (the suite pins `linear`: conftest)."""

import pytest
import torch
import torch.nn.functional as F

from engine.forward import matmul


@pytest.fixture
def fresh_plan(monkeypatch):
    monkeypatch.setattr(matmul, "_W_FIRST", {})
    return matmul._W_FIRST


@pytest.mark.parametrize("rows", [1, 2, 5, 17, 33])
def test_both_layouts_compute_the_same_product(fresh_plan, rows):
    torch.manual_seed(rows)
    x, weight = torch.randn(rows, 64), torch.randn(96, 64)
    linear = matmul.linear(x, weight)
    fresh_plan[rows] = True
    w_first = matmul.linear(x, weight)
    assert linear.shape == w_first.shape == (rows, 96)
    torch.testing.assert_close(w_first, F.linear(x, weight), rtol=1e-5, atol=1e-5)  # not bitwise: another kernel
    torch.testing.assert_close(linear, F.linear(x, weight), rtol=0, atol=0)


def test_planning_times_each_row_count_once_and_skips_prompt_sized_passes(fresh_plan, monkeypatch):
    monkeypatch.delenv("SPECDEC_MATMUL", raising=False)
    weights = [torch.randn(128, 64) for _ in range(2)]
    matmul.plan(4, weights, repeats=1)
    assert set(fresh_plan) == {4} and isinstance(fresh_plan[4], bool)
    fresh_plan[4] = not fresh_plan[4]
    matmul.plan(4, weights, repeats=1)  # planned already: not timed again
    matmul.plan(200, weights, repeats=1)  # a prompt: a proper matrix product, not planned
    assert set(fresh_plan) == {4} and matmul.planned()[4] in ("W @ x.T", "x @ W.T")


@pytest.mark.parametrize("value, w_first", [("w-first", True), ("linear", False), (" LINEAR ", False)])
def test_the_environment_pins_the_layout_without_timing(fresh_plan, monkeypatch, value, w_first):
    monkeypatch.setenv("SPECDEC_MATMUL", value)
    matmul.plan(3, [torch.randn(8, 8)])
    assert fresh_plan == {3: w_first}


def test_an_unknown_pin_is_ignored(monkeypatch):
    monkeypatch.setenv("SPECDEC_MATMUL", "fastest")
    assert matmul.forced_layout() is None
