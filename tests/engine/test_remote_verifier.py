"""`--verifier http://HOST:PORT/v1`: the verifier on a server (engine/models/remote.py, engine/forward/remote_lm.py),
against a stand-in server backed by the tiny model (tests/helpers/model_server.py). Greedy output is the served
model's own greedy output; what a server cannot do is refused with the reason; a server that is down, slow or
speaks another tokenizer gets one clear sentence. The same checks on a real vLLM server: tests/engine/test_vllm_server.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from engine import (ConfigError, ServerError, Session, SpecConfig, TokenizerMismatchError, read_trace, trace_header,
                    write_trace)
from engine.models.remote import connect
from conftest import plain_greedy
from helpers.model_server import serving

PROMPTS = ["the cat sat on the mat and the", "a dog", "the cat sat on the mat and the dog sat on the"]


@pytest.fixture(scope="module")
def server(tiny_verifier):
    with serving(tiny_verifier) as running:
        yield running


def remote_session(server, **config) -> Session:
    return Session.from_config(SpecConfig(verifier=server.url, **{"drafter": "ngram", "max_new_tokens": 24, **config}))


@pytest.mark.parametrize("block_size", [1, 3, 6])
@pytest.mark.parametrize("drafter", ["ngram", "drafter"])
def test_greedy_output_is_the_served_models_own_greedy_output(server, tiny, tiny_verifier, block_size, drafter):
    spec = tiny["drafter"] if drafter == "drafter" else drafter  # a small local model of the served one's family
    session = remote_session(server, drafter=spec, block_size=block_size)
    for prompt in PROMPTS:
        session.reset(prompt)
        session.run()
        assert session.new_token_ids == plain_greedy(tiny_verifier, session.prompt_ids, 24), prompt
    assert session.stats.drafted > 0  # drafts were checked (ngram's were all refused: the tiny model does not repeat)
    if drafter == "drafter":
        assert session.stats.accepted > 0  # and kept, not only the server's own tokens


def test_the_auto_schedule_and_the_speed_check_work_through_the_server(server):
    session = remote_session(server, drafter="auto", block_size_schedule="auto")
    assert session.config.drafter == "ngram"  # the built-in drafter that needs nothing of the server's weights
    session.reset(PROMPTS[2])
    steps = session.run()
    assert steps[0].plan and steps[0].plan.startswith("auto:")
    check = session.speed_check()  # plain decoding: one next-token request per token
    assert check.plain.token_ids == tuple(session.tokens) and check.stats.new_tokens == len(session.new_token_ids)
    assert not any(s.cpu_busy for s in steps)  # a server's passes say nothing about this CPU (on it, it is the load)


def test_a_verify_step_is_one_request_and_the_screen_gets_the_servers_numbers(server, tiny_verifier):
    session = remote_session(server, block_size=4)
    session.reset(PROMPTS[2])
    before = len(server.requests)
    result = session.step()
    assert len(server.requests) == before + 1 and server.requests[-1]["prompt_logprobs"] == 5
    first = result.positions[0]
    p_top = plain_greedy(tiny_verifier, session.prompt_ids, 1)[0]
    assert first.verifier_id == p_top and len(first.verifier_top) == 5 and 0 < first.p_verifier <= 1
    assert session.config.verifier == f"{server.url}#{server.name}"  # the title and traces name server and model


@pytest.mark.parametrize("changes, reason", [
    ({"drafter": "head"}, "reads the verifier's hidden states"),
    ({"drafter": "same"}, "verifier's own weights"),
    ({"drafter": "early-exit"}, "first layers"),
    ({"tree": "3,2"}, "tree attention mask"),
    ({"verify": "sampling", "top_k": 5}, "raw distribution"),
    ({"forward": "bf16"}, "server computes the verifier"),
])
def test_what_a_server_cannot_give_is_refused_with_the_reason(server, changes, reason):
    with pytest.raises(ConfigError, match=reason):
        remote_session(server, **changes)


def test_settings_changed_between_steps_are_refused_and_the_run_goes_on(server):
    session = remote_session(server, block_size=2)
    session.reset(PROMPTS[0])
    session.step()
    with pytest.raises(ConfigError, match="tree attention mask"):
        session.configure(tree="3,2")
    with pytest.raises(ConfigError, match="hidden states"):
        session.switch_drafter("head")
    assert session.config.tree is None and session.config.drafter == "ngram"
    session.step()


def test_a_server_with_another_tokenizer_is_refused_naming_both(tiny_verifier):
    with serving(tiny_verifier) as other:
        other.tokenize_shift = 1
        with pytest.raises(TokenizerMismatchError, match="tokenize differently"):
            remote_session(other)


def test_nothing_listening_is_one_sentence_not_a_hang():
    with pytest.raises(ServerError, match="connection refused"):
        Session.from_config(SpecConfig(verifier="http://127.0.0.1:9/v1", drafter="ngram"))


def test_a_slow_server_times_out_and_a_failed_step_leaves_the_run_as_it_was(tiny_verifier):
    with serving(tiny_verifier) as slow:
        config = SpecConfig(verifier=slow.url, drafter="ngram", block_size=3)
        session = Session.from_loaded(config, connect(config, timeout_s=0.5))
        session.reset(PROMPTS[2])
        session.step()
        tokens = list(session.tokens)
        slow.delay_s = 1.0
        with pytest.raises(ServerError, match="did not answer"):
            session.step()
        assert session.tokens == tokens and len(session.steps) == 1
        slow.delay_s = 0.0
        session.step()  # retried: the stream was left as it was
        assert len(session.steps) == 2


def test_a_trace_names_the_server_and_replays_without_it(server, tmp_path):
    session = remote_session(server, block_size=3)
    session.reset(PROMPTS[0])
    session.run()
    path = tmp_path / "remote.jsonl"
    write_trace(path, trace_header(session.config.to_dict(), session.prompt, session.prompt_ids, session.prompt_pieces),
                session.steps)
    trace = read_trace(path)
    assert trace.header["config"]["verifier"] == f"{server.url}#{server.name}" and len(trace.steps) == len(session.steps)


def test_headless_runs_against_the_server_and_exits_2_with_one_line_when_it_is_down(server):
    run = lambda url: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "specdec_tui.cli", "--headless", "--verifier", url, "--drafter", "ngram",
         "-k", "3", "--max-new-tokens", "12", "--prompt", PROMPTS[2]], capture_output=True, text=True, timeout=120)
    ok = run(server.url)
    assert ok.returncode == 0, ok.stderr
    assert "[step 1]" in ok.stdout
    down = run("http://127.0.0.1:9/v1")
    assert down.returncode == 2 and down.stdout == ""
    errors = [line for line in down.stderr.splitlines() if not line.startswith("[load")]  # progress, then the error
    assert len(errors) == 1 and "connection refused" in errors[0]


@pytest.mark.anyio
async def test_the_app_steps_against_the_server_and_a_refused_key_keeps_the_run(server, tiny_verifier):
    from conftest import settle
    from specdec_tui.app import SpecDecApp
    from specdec_tui.widgets.status_bar import StatusBar

    app = SpecDecApp(config=SpecConfig(verifier=server.url, drafter="ngram", block_size=3, max_new_tokens=24),
                     prompt=PROMPTS[2])
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.scheduler.ready, app.query_one(StatusBar).message.plain
        assert server.url in app.sub_title  # the title names the server
        for _ in range(3):
            await pilot.press("n")
            await settle(pilot)
        session = app.driver.session
        assert app.snap.stats.steps == 3
        assert session.new_token_ids == plain_greedy(tiny_verifier, session.prompt_ids, len(session.new_token_ids))
        await pilot.press("e")  # a tree: refused by the server verifier, from the step that would use it
        await pilot.press("n")
        await settle(pilot)
        assert "tree attention mask" in app.query_one(StatusBar).message.plain
        assert app.snap.stats.steps == 3
        await pilot.press("n")  # the refused setting is gone: stepping goes on as a chain
        await settle(pilot)
        assert app.snap.stats.steps == 4 and app.snap.config.tree is None
        await pilot.press("v")  # sampling verification: the server's p decides, its samples draw
        for _ in range(3):
            await pilot.press("n")
            await settle(pilot)
        assert app.snap.stats.steps == 7 and app.snap.config.verify == "sampling"
        assert all(s.verify_mode == "sampling" for s in session.steps[4:])
        assert "Traceback" not in app.query_one(StatusBar).message.plain
