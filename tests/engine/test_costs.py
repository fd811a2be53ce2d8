"""Pass timings (engine/forward/costs.py): the plain-step unit of c and r, measured without touching the run."""

import pytest

import engine.forward.costs as costs
from engine.forward.costs import pass_seconds, plain_step_seconds, verify_curve
from conftest import make_session


def test_a_pass_needs_a_context(tiny_verifier):
    with pytest.raises(ValueError, match="reset the session first"):
        pass_seconds(make_session(tiny_verifier, "ngram"), 3)


def test_timing_passes_between_steps_leaves_the_run_unchanged(tiny_verifier):
    timed, untouched = (make_session(tiny_verifier, "same", block_size=3, max_new_tokens=20) for _ in range(2))
    for session in (timed, untouched):
        session.reset("the cat sat on the mat")
        session.step()
    assert plain_step_seconds(timed) > 0 and pass_seconds(timed, 9) > 0
    assert set(verify_curve(timed, (1, 2, 5), rounds=2, warmup=1)) == {1, 2, 5}
    timed.run()
    untouched.run()
    assert timed.new_token_ids == untouched.new_token_ids  # its own KV cache: the session's caches are untouched


def test_the_start_up_curve_keeps_each_sizes_fastest_pass_after_the_warm_up(tiny_verifier, monkeypatch):
    """Slow first passes and one spike must not price a size: auto compares sizes by these prices."""
    session = make_session(tiny_verifier, "ngram")
    session.reset("the cat sat on the mat")
    slow_start = iter([0.9, 0.9])  # the warm-up passes, the slowest of all
    spiky = {1: iter([0.036, 0.025, 0.026]), 3: iter([0.030, 0.031, 0.080])}
    monkeypatch.setattr(costs, "_timed_pass",
                        lambda lm, context, n: next(slow_start, None) or next(spiky[n]))
    assert verify_curve(session, (1, 3), rounds=3, warmup=2) == {1: 0.025, 3: 0.030}
