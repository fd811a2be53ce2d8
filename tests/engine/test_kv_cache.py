"""After rejections, cropped caches must give exactly the logits of a recompute from scratch."""

import pytest
import torch

from conftest import make_session


def fresh_logits(model, ids):
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids])).logits[0, -1].float()


@pytest.mark.parametrize("forward", ["auto", "transformers"])
def test_rollback_matches_recompute(tiny, tiny_verifier, forward):
    session = make_session(
        tiny_verifier, tiny["drafter"], block_size=6, draft_mode="sampled", max_new_tokens=40, forward=forward
    )
    session.reset("In a distant future,")
    rejections = 0
    for _ in range(8):
        result = session.step()
        rejections += result.accepted < result.drafted
        if session.finished:
            break
    assert rejections > 0  # the point is to test caches after rejections
    cached = session.verifier_lm.catch_up(session.tokens)[-1]
    assert torch.allclose(cached, fresh_logits(tiny_verifier.model, session.tokens), atol=1e-4)
    drafter_lm = session.drafter.lm
    assert torch.allclose(drafter_lm.catch_up(session.tokens)[-1], fresh_logits(drafter_lm.model, session.tokens), atol=1e-4)


@pytest.mark.parametrize("forward", ["auto", "transformers"])
def test_cache_lengths_track_the_context(tiny, tiny_verifier, forward):
    session = make_session(tiny_verifier, tiny["drafter"], block_size=4, max_new_tokens=30, forward=forward)
    session.reset("The drafter proposes")
    while not session.finished:
        session.step()
        # Everything but the newest token is cached; the newest is fed with the next step's drafts.
        assert session.verifier_lm.length == len(session.tokens) - 1
        if forward == "transformers":  # the lean forward's cache is a preallocated buffer: its length is the count
            assert session.verifier_lm.cache.get_seq_length() == len(session.tokens) - 1
        assert session.drafter.lm.length <= len(session.tokens) - 1


def test_early_exit_shares_weights(tiny_verifier):
    session = make_session(tiny_verifier, "early-exit:2", block_size=3, max_new_tokens=10)
    view = session.drafter.lm.model
    verifier_params = {p.data_ptr() for p in tiny_verifier.model.parameters()}
    assert {p.data_ptr() for p in view.parameters()} <= verifier_params
    assert len(view.model.layers) == 2 and len(tiny_verifier.model.model.layers) == 4
    session.reset("In a distant future,")
    session.run()  # and the verifier is untouched: it still has all its layers
    assert len(tiny_verifier.model.model.layers) == 4
