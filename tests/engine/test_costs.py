"""Pass timings (engine/forward/costs.py): the plain-step unit of c and r, measured without touching the run."""

import pytest

from engine.forward.costs import pass_seconds, plain_step_seconds
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
    timed.run()
    untouched.run()
    assert timed.new_token_ids == untouched.new_token_ids  # its own KV cache: the session's caches are untouched
