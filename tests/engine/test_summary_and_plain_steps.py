"""One typed summary for the app and the headless run; a step with no drafts is a plain step, in traces too."""

import json
from pathlib import Path

import pytest

from conftest import make_session
from engine import Decision, Source, SpecConfig
from engine.records.trace import read_trace, step_record
from specdec_tui.app import SpecDecApp
from specdec_tui.driver import EngineDriver
from specdec_tui.headless import summary

DATA = Path(__file__).parent.parent / "data"


def test_app_and_headless_agree_on_the_theory_under_the_adaptive_schedule(tiny_verifier):
    session = make_session(tiny_verifier, "same", block_size=2, draft_mode="greedy", block_size_schedule="heuristic",
                           max_new_tokens=24)
    session.reset("In a distant future,")
    for _ in range(3):
        session.step()
    assert session.block_size != session.config.block_size  # the schedule moved k
    driver = EngineDriver(session.config)
    driver.session = session
    theory = driver.snapshot().theory
    printed = summary(session)
    # Both speak of the k the latest step used (before: the headless run used the configured k, the app the next k).
    assert theory.k == printed["block_size"] == session.steps[-1].block_size
    assert printed["expected_tokens_per_step"] == theory.expected_tokens_per_step
    assert printed["best_k"] == theory.best_k


def test_a_step_with_no_drafts_is_plain_not_bonus(tiny_verifier):
    session = make_session(tiny_verifier, "ngram", max_new_tokens=4)
    session.reset("ab")  # nothing to look up: ngram drafts nothing
    result = session.step()
    assert result.drafted == 0
    assert result.positions[0].decision is Decision.PLAIN
    assert [t.source for t in result.emitted] == [Source.PLAIN]


def test_old_traces_that_called_a_plain_step_bonus_still_read(tmp_path, tiny_verifier):
    session = make_session(tiny_verifier, "ngram", max_new_tokens=4)
    session.reset("ab")
    record = step_record(session.step())
    record["positions"][0]["decision"] = "bonus"  # as written before Decision.PLAIN existed
    record["emitted"][0]["source"] = "bonus"
    lines = [json.loads((DATA / "greedy.jsonl").read_text().splitlines()[0]), record]
    path = tmp_path / "old.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    step = read_trace(path).steps[0]
    assert step.positions[0].decision is Decision.PLAIN and step.emitted[0].source is Source.PLAIN


def test_a_guess_beside_a_plain_step_is_saved_in_the_trace_and_read_back(tmp_path, tiny_verifier):
    from dataclasses import replace

    from engine import Guess, TraceError

    session = make_session(tiny_verifier, "ngram", max_new_tokens=4)
    session.reset("ab")
    step = replace(session.step(), plan="auto: plain step; an unverified guess beside it, to re-measure",
                   guess=Guess("lookup", 7, "[i]x", 2))
    head = json.loads((DATA / "greedy.jsonl").read_text().splitlines()[0])
    path = tmp_path / "guess.jsonl"
    path.write_text(json.dumps(head) + "\n" + json.dumps(step_record(step)) + "\n")
    assert read_trace(path).steps[0] == step
    for bad in ({"source": "lookup", "token_id": 7, "piece": "x", "rank": 9}, {"token_id": 7}, "x"):
        record = {**step_record(step), "guess": bad}
        path.write_text(json.dumps(head) + "\n" + json.dumps(record) + "\n")
        with pytest.raises(TraceError, match="guess|rank"):
            read_trace(path)


@pytest.mark.anyio
async def test_replay_shows_the_trace_warnings(tmp_path):
    lines = (DATA / "greedy.jsonl").read_text().splitlines()
    path = tmp_path / "cut.jsonl"
    path.write_text("\n".join(lines[:4] + [lines[4][:50]]) + "\n")  # killed mid-write
    app = SpecDecApp(replay=str(path))
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        shown = [n.message for n in app._notifications]
        assert any("truncated" in message for message in shown), shown


def test_saved_summary_and_headless_summary_share_their_keys(tiny_verifier, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    session = make_session(tiny_verifier, "same", max_new_tokens=6)
    session.reset("In a distant future,")
    session.run()
    driver = EngineDriver(SpecConfig(verifier=tiny_verifier.name))
    driver.session = session
    saved = read_trace(driver.save()).summary
    assert saved.keys() == summary(session).keys()
