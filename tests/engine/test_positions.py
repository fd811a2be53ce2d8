"""A step's columns (engine/records/positions.py), read as the screen reads them: drafts kept, the first refusal
and its correction, positions never reached, the bonus slot. Checked on every step of real runs."""

import pytest

from engine import Decision, Source
from conftest import make_session

PROMPT = "the cat sat on the mat and the dog sat on the"


def chain_steps(tiny_verifier, drafter, **config):
    session = make_session(tiny_verifier, drafter, block_size=2, max_new_tokens=40, seed=3, **config)
    session.reset(PROMPT)
    return session.run()


@pytest.mark.parametrize("verify", ["greedy", "sampling"])
def test_every_chain_step_has_k_plus_one_columns_in_the_order_they_were_decided(tiny_verifier, verify):
    # The verifier's own weights drafting at temperature 0.7: whole blocks kept, and refusals, both seen.
    steps = chain_steps(tiny_verifier, "same", draft_mode="sampled", verify=verify, draft_temperature=0.7)
    assert any(s.accepted < s.drafted for s in steps) and any(s.accepted == s.drafted for s in steps)  # both seen
    for step in steps:
        decisions = [p.decision for p in step.positions]
        assert len(decisions) == step.drafted + 1
        assert decisions[: step.accepted] == [Decision.ACCEPTED] * step.accepted
        last = step.positions[min(step.accepted, step.drafted)]
        if step.accepted < step.drafted:  # the first refusal: the verifier's token there is the correction
            assert last.decision in (Decision.REJECTED, Decision.STOPPED)
            assert set(decisions[step.accepted + 1 :]) <= {Decision.NOT_REACHED}
        else:
            assert last.decision in (Decision.BONUS, Decision.STOPPED)
        kept = [p.draft_id for p in step.positions[: step.accepted]]
        if step.finish_reason is None:
            assert [t.token_id for t in step.emitted] == kept + [last.verifier_id]
            assert step.emitted[-1].source == (Source.CORRECTION if step.accepted < step.drafted else Source.BONUS)


def test_greedy_columns_keep_exactly_the_drafts_that_are_the_verifiers_argmax(tiny_verifier):
    for step in chain_steps(tiny_verifier, "same", draft_mode="sampled", verify="greedy", draft_temperature=1.5):
        for p in step.positions[: step.drafted]:
            if p.decision is Decision.ACCEPTED:
                assert p.draft_id == p.verifier_id and p.p_verifier_of_draft == p.p_verifier
            elif p.decision is Decision.REJECTED:
                assert p.draft_id != p.verifier_id and p.p_verifier_of_draft <= p.p_verifier
            assert p.accept_prob is None and p.draw is None  # greedy verification draws nothing


def test_sampling_columns_show_the_rule_that_decided_them(tiny_verifier):
    steps = chain_steps(tiny_verifier, "same", draft_mode="sampled", verify="sampling", draft_temperature=1.5)
    rejected = [p for s in steps for p in s.positions if p.decision is Decision.REJECTED]
    assert rejected
    for step in steps:
        for p in step.positions[: step.drafted]:
            if p.decision is Decision.ACCEPTED:
                assert p.draw < p.accept_prob or p.accept_prob == 1.0
            elif p.decision is Decision.REJECTED:
                assert p.draw >= p.accept_prob
                assert 0.0 < p.residual_mass <= 1.0 and p.residual_prob > 0.0  # drawn from max(0, p - q)
