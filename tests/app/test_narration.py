"""Issue 26: the plain-language narration, the notebook's per-position lines, and numbers on screen that add up
(the sampling rule's p, q, min(1, p/q) and u, recomputed from what is shown)."""

from __future__ import annotations

import dataclasses
import itertools
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import make_session
from engine import Alternative, ConfigError, Decision, Guess, Position, StepResult, Token, Source, read_trace
from specdec_tui.narration import (Rule, chain_rule, guess_line, narrate, node_rule, notebook_lines, num, quote,
                                   DISCARDED_NOTE)

DATA = Path(__file__).parent.parent / "data"


def steps(name: str) -> list[StepResult]:
    return list(read_trace(str(DATA / name)).steps)


# -- what a step says -----------------------------------------------------------------------------------------


def test_greedy_mismatch_says_what_was_kept_and_taken():
    line = narrate(steps("greedy.jsonl")[0])
    assert line.startswith("The drafter guessed ' a company that focuses'.")
    assert "preferred ' the' over ' a'" in line and "kept 0 drafts, took ' the' from the verifier" in line
    assert line.endswith("1 token for 1 verifier pass.")


def test_greedy_partial_acceptance_reads_like_the_issue():
    """'The verifier agreed with ' a' but preferred ' the' over ' world': kept 1 draft, took ' the' ...'"""
    step = steps("greedy.jsonl")[0]
    first = step.positions[0]
    agreed = dataclasses.replace(first, draft_piece=" a", verifier_piece=" a", decision=Decision.ACCEPTED)
    second = dataclasses.replace(step.positions[1], draft_piece=" world", verifier_piece=" the",
                                 decision=Decision.REJECTED)
    rest = tuple(dataclasses.replace(p, decision=Decision.NOT_REACHED) for p in step.positions[2:])
    edited = dataclasses.replace(step, drafted=2, accepted=1, positions=(agreed, second, *rest)[:3],
                                 emitted=(Token(1, " a", Source.DRAFT), Token(2, " the", Source.CORRECTION)))
    line = narrate(edited)
    assert "The verifier agreed with ' a' but preferred ' the' over ' world': kept 1 draft, took ' the'" in line
    assert "2 tokens for 1 verifier pass." in line


def test_full_block_says_bonus():
    line = narrate(steps("greedy.jsonl")[3])
    assert "agreed with all 4: kept 4 drafts and added its own next token ' With' as a bonus" in line
    assert "5 tokens for 1 verifier pass." in line


def test_sampling_says_probability_draw_and_leftover():
    line = narrate(steps("sampling.jsonl")[0])
    assert "kept with probability 0.59; drew u = 0.69 ≥ 0.59, so rejected" in line
    assert "' memorial' drawn from the leftover max(0, p − q)" in line


def test_tree_says_branch_and_one_pass():
    line = narrate(steps("tree.jsonl")[0])
    assert "A tree of 21 candidates" in line and "one verifier pass" in line and "the branch ' the' was kept" in line


def test_a_step_with_no_drafts():
    step = steps("greedy.jsonl")[0]
    plain = dataclasses.replace(step, drafted=0, accepted=0, positions=(dataclasses.replace(
        step.positions[0], index=0, draft_id=None, draft_piece=None, q_drafter=None, p_verifier_of_draft=None,
        decision=Decision.PLAIN),), emitted=(Token(1, " the", Source.PLAIN),))
    assert "Nothing was drafted" in narrate(plain) and "' the' on its own" in narrate(plain)
    assert "no earlier match to copy" in narrate(plain)
    chosen = dataclasses.replace(plain, plan="auto: plain step; drafting would cost more than it saves (best: ...)")
    assert "auto chose a plain step, as drafting here is expected to cost more time" in narrate(chosen)
    trial = dataclasses.replace(plain, plan="auto: plain step; a 1-token pass never ran here: once, to price it live "
                                            "(best drafting: k=1, expected 1.6 tokens/call, 1.10x plain)")
    assert "auto chose a plain step once, to time one on this machine" in narrate(trial)
    assert "cost more time" not in narrate(trial)  # a step run to measure is not one auto expected to be faster


def test_a_plain_steps_guess_says_what_was_guessed_and_whether_it_was_the_verifiers_token():
    step = steps("greedy.jsonl")[0]
    plain = dataclasses.replace(step, drafted=0, accepted=0, positions=(dataclasses.replace(
        step.positions[0], index=0, draft_id=None, draft_piece=None, q_drafter=None, p_verifier_of_draft=None,
        decision=Decision.PLAIN),), emitted=(Token(1, " the", Source.PLAIN),),
        plan="auto: plain step; an unverified guess beside it, to re-measure, after 7 plain steps (best drafting: ...)")
    stories = {rank: narrate(dataclasses.replace(plain, guess=Guess("head", 1 if rank == 1 else 9, "[b] the\n", rank)))
               for rank in (1, 3, None)}
    for story in stories.values():
        assert "The head's unverified guess, '[b] the↵', was" in story  # the piece literally
        assert "auto chose a plain step" in story
    assert stories[1].endswith("was right. 1 token for 1 verifier pass.")
    assert "was wrong (the verifier's token was its #3)" in stories[3]
    assert "was wrong (not among its top 5)" in stories[None]
    for story in stories.values():  # at 80x24 a fifth line of story pushes the pane below off the screen
        assert len(textwrap.wrap(story, 78)) <= 4, story
    nothing = narrate(dataclasses.replace(plain, guess=Guess(None, None, "", None)))
    assert "The drafter had nothing to guess here: a miss." in nothing
    assert guess_line(Guess("head", 1, "[b]", 1)) == "guessed '[b]': right"  # the stats' line
    assert guess_line(Guess("head", 9, "x", 2)).endswith("#2") and guess_line(Guess(None, None, "", None)).endswith("miss")


def test_model_text_is_quoted_literally():
    assert quote("[red]x\x1b\n") == "'[red]x␛↵'"


def test_notebook_lines_read_like_the_notebook():
    lines = notebook_lines(steps("greedy.jsonl")[3])
    assert lines[0] == "[0] draft=' become' vs greedy=' become' -> ACCEPT"
    assert lines[-1] == "[4] no draft -> bonus: take greedy=' With'"
    assert notebook_lines(steps("greedy.jsonl")[0]) == ["[0] draft=' a' vs greedy=' the' -> MISMATCH -> take greedy and STOP"]
    sampled = notebook_lines(steps("sampling.jsonl")[0])
    assert sampled[-1].startswith("[3] draft=' new' vs sample=' memorial' -> u=0.69 >= 0.59 -> REJECT")


# -- numbers that add up ----------------------------------------------------------------------------------------


def bounds(shown: str) -> tuple[float, float]:
    """The interval a shown number stands for (its last digit rounded)."""
    d = Decimal(shown)
    half = Decimal(1).scaleb(d.as_tuple().exponent) / 2 if shown not in ("0", "1") else Decimal(0)
    return float(d - half), float(d + half)


def consistent(p: str | None, q: str, ratio: str, u: str, decision: Decision) -> bool:
    """From the shown p, q, min(1, p/q) and u alone: the shown ratio can be min(1, p/q), and the decision follows."""
    r_lo, r_hi = bounds(ratio)
    if p is not None:
        p_lo, p_hi = bounds(p)
        q_lo, q_hi = bounds(q)
        low, high = min(1.0, p_lo / q_hi), min(1.0, p_hi / max(q_lo, 1e-300))
        if r_hi < low - 1e-12 or r_lo > high + 1e-12:
            return False
        if bounds(ratio) == (1.0, 1.0) and low < 1.0 and high < 1.0:
            return False
    kept = float(u) < float(ratio)
    return kept == (decision is Decision.ACCEPTED or decision is Decision.STOPPED)


def shown(rule: Rule) -> tuple[str | None, str, str, str]:
    """What the screen shows of a rule: p(draft), q (rule), and the comparison row's u against the ratio."""
    return (None if rule.p is None else num(rule.p)), num(rule.q), rule.shown_ratio_for_u(), rule.shown_u()


def check_step(result: StepResult) -> int:
    checked = 0
    if result.tree is not None:
        items = [(node, node_rule(result, node)) for node in result.tree.nodes]
    else:
        items = [(p, chain_rule(result, p)) for p in result.positions]
    for record, rule in items:
        if result.verify_mode == "greedy" or record.accept_prob is None:
            assert rule is None or result.verify_mode == "sampling"
            continue
        assert rule is not None
        p, q, ratio, u = shown(rule)
        assert consistent(p, q, ratio, u, record.decision), (result.step, record, rule, (p, q, ratio, u))
        checked += 1
    return checked


DRAFTERS = ("model", "same", "ngram", "early-exit:2")
SHAPES = (None, "2,2", "dynamic:5")


@pytest.mark.parametrize("drafter,tree", list(itertools.product(DRAFTERS, SHAPES)))
def test_shown_numbers_give_the_shown_decision(tiny, tiny_verifier, drafter, tree):
    """Every drafter the tiny models allow, chain and trees, greedy and sampled drafts, both verifications."""
    checked = 0
    for draft_mode, verify in itertools.product(("greedy", "sampled"), ("greedy", "sampling")):
        spec = tiny["drafter"] if drafter == "model" else drafter
        try:
            session = make_session(tiny_verifier, spec, tree=tree, block_size=3, draft_mode=draft_mode, verify=verify,
                                   max_new_tokens=24, draft_temperature=1.2)
        except ConfigError:
            continue
        for seed in (1, 2):
            session.reset("The drafter proposes, the verifier checks, and the drafter proposes", seed=seed)
            for result in session.run():
                checked += check_step(result)
                assert narrate(result)  # every kind of step has its sentence
                notebook_lines(result)
    assert checked > 10


def test_a_wrong_q_is_caught():
    """The bug of issue 25 item 4: a greedy draft tested with q = 1, shown with the drafter's softmax q 0.11."""
    position = Position(index=0, draft_id=7, draft_piece=" world", q_drafter=1.0, verifier_id=8,
                        verifier_piece=" each", p_verifier=0.3, p_verifier_of_draft=0.21, decision=Decision.REJECTED,
                        accept_prob=0.21, draw=0.32, draft_top=(Alternative(7, " world", 0.11),))
    result = StepResult(step=1, block_size=1, drafted=1, accepted=0, positions=(position,),
                        emitted=(Token(8, " each", Source.CORRECTION),), draft_s=0, verify_s=0, step_s=0,
                        verifier_calls=1, draft_mode="greedy", verify_mode="sampling")
    rule = chain_rule(result, position)
    assert rule.q == 1.0 and rule.q_why == "greedy draft: q = 1"
    assert consistent(*shown(rule), Decision.REJECTED)
    assert not consistent("0.21", "0.11", rule.shown_ratio_for_u(), rule.shown_u(), Decision.REJECTED)


def test_the_discarded_note_is_on_screen_words():
    assert "discarded" in DISCARDED_NOTE


def test_tree_notebook_lines_list_every_candidate_tried_level_by_level():
    lines = notebook_lines(steps("tree.jsonl")[1])
    assert lines[:3] == ["[0] draft=' of' vs greedy=' has' -> MISMATCH", "[0] draft=' is' vs greedy=' has' -> MISMATCH",
                         "[0] draft=',' vs greedy=' has' -> MISMATCH"]
    assert lines[-1] == "[0] no candidate left -> take greedy=' has' and STOP"
    assert notebook_lines(steps("tree.jsonl")[0])[0] == "[0] draft=' the' vs greedy=' the' -> ACCEPT"


def test_headless_explain_prints_the_notebook_lines_and_the_narration(tiny, capsys):
    import json

    from specdec_tui.cli import main

    args = ["--headless", "--verifier", tiny["verifier"], "--drafter", "same", "-k", "3", "--max-new-tokens", "6",
            "--prompt", "The drafter proposes"]
    assert main([*args, "--explain"]) == 0
    out = capsys.readouterr().out.splitlines()
    first = out.index(next(line for line in out if line.startswith("[step 1]")))
    assert out[first + 1].startswith("    [0] draft=") and " -> " in out[first + 1]
    assert any(line.startswith("    The drafter guessed") for line in out)
    assert main([*args, "--explain", "--json"]) == 0
    record = json.loads(capsys.readouterr().out.splitlines()[0])
    assert record["positions"][0].startswith("[0] draft=") and record["narration"].startswith("The drafter guessed")
    assert main(args) == 0  # without --explain: one line per step, as before
    assert not any(line.startswith("    ") for line in capsys.readouterr().out.split("text:")[0].splitlines())
    assert main(["--explain"]) == 2  # only with --headless, as --json
