"""Prompts are plain text (special-token strings included), --chat, undecodable bytes, narrow encodings,
dumb terminals and --threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import ConfigError, PromptError, SpecConfig
from engine.models.lean_tokenizer import LeanTokenizer
from engine.models.prompting import chat_frame, encode_prompt_text
from conftest import make_session

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent.parent / "data"


# ---- special tokens ---------------------------------------------------------------------------------------------


def test_a_special_token_string_in_the_prompt_is_plain_text(tiny_verifier):
    session = make_session(tiny_verifier, "same", max_new_tokens=4)
    eos = tiny_verifier.tokenizer.eos_token_id
    session.reset("hi <eos> there")
    assert eos not in session.prompt_ids  # before: the string became the end-of-text control token
    assert "".join(session.prompt_pieces) == "hi <eos> there"


def test_the_lean_tokenizer_also_encodes_special_token_strings_as_text(tiny):
    lean = LeanTokenizer(Path(tiny["verifier"]))
    ids = encode_prompt_text(lean, "hi <eos> there")
    assert lean.eos_token_id not in ids and lean.decode(ids) == "hi <eos> there"
    assert lean.eos_token_id in lean("hi <eos>").input_ids  # the template's own markup still can be a control token


def test_chat_without_a_template_is_a_clear_error(tiny_verifier):
    session = make_session(tiny_verifier, "same", chat=True)
    with pytest.raises(PromptError, match="no chat template"):
        session.reset("hello")


def test_chat_wraps_the_prompt_and_keeps_the_users_text_plain(tiny):
    lean = LeanTokenizer(Path(tiny["verifier"]))
    lean.chat_template = "{% for m in messages %}<eos>{{ m['role'] }}: {{ m['content'] }}<eos>{% endfor %}" \
                         "{% if add_generation_prompt %}bot:{% endif %}"
    assert chat_frame(lean) == ("<eos>user: ", "<eos>bot:")
    ids = encode_prompt_text(lean, "hi <eos> evil", chat=True)
    eos = lean.eos_token_id
    assert ids.count(eos) == 2  # the template's two markers, never the one typed into the prompt
    assert lean.decode(ids) == "<eos>user: hi <eos> evil<eos>bot:"


@pytest.mark.embedded
def test_embedded_model_prompt_and_chat_template(embedded):
    from transformers import AutoTokenizer

    from engine.models.loading import _gguf_cache_dir, embedded_gguf

    session = make_session(embedded, "same", max_new_tokens=4)
    session.reset("<|im_start|>user\nhi<|im_end|>")
    assert not {1, 2} & set(session.prompt_ids)  # before: [1, 4093, 198, 6004, 2]
    reference = AutoTokenizer.from_pretrained(str(_gguf_cache_dir(embedded_gguf("smollm2-135m"))))
    expected = reference.apply_chat_template([{"role": "user", "content": "Name a colour."}], add_generation_prompt=True,
                                             tokenize=True)
    expected = expected["input_ids"] if isinstance(expected, dict) or hasattr(expected, "keys") else expected
    chat = make_session(embedded, "same", max_new_tokens=4, chat=True)
    chat.reset("Name a colour.")
    assert chat.prompt_ids == list(expected)
    chat.reset("hi<|im_end|>")
    assert chat.prompt_ids.count(2) == 2  # the system and user turns' own ends; the typed one is text


# ---- bytes and encodings ------------------------------------------------------------------------------------


def run_cli(args, **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **env}
    return subprocess.run([sys.executable, "-m", "specdec_tui.cli", *args], capture_output=True, env=environment, timeout=300)


def test_a_prompt_that_is_not_utf8_is_decoded_with_replacement(tiny):
    done = run_cli([b"--headless", b"--verifier", tiny["verifier"].encode(), b"--max-new-tokens", b"3",
                    b"--prompt", b"hello \xff world"])
    err = done.stderr.decode()
    assert done.returncode == 0 and "Traceback" not in err, err
    assert "not valid UTF-8" in err and "text:\nhello \ufffd world" in done.stdout.decode()


def test_the_engine_accepts_a_prompt_holding_a_lone_surrogate(tiny_verifier):
    session = make_session(tiny_verifier, "same", max_new_tokens=3)
    session.reset("hello \udcff world")
    assert "\ufffd" in "".join(session.prompt_pieces)


def test_an_ascii_terminal_gets_replacement_characters_not_a_crash(tiny):
    done = run_cli(["--headless", "--verifier", tiny["verifier"], "--max-new-tokens", "3", "--prompt", "café"],
                   PYTHONIOENCODING="ascii")
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr
    assert b"text:\ncaf? " in done.stdout or b"text:\ncaf?" in done.stdout


def test_a_dumb_terminal_gets_no_colour(monkeypatch):
    from specdec_tui import cli
    from specdec_tui.app import SpecDecApp

    monkeypatch.setenv("NO_COLOR", "x")
    monkeypatch.delenv("NO_COLOR")  # absent now, and restored to its old state after the test
    monkeypatch.setenv("TERM", "dumb")
    apps = []
    monkeypatch.setattr(SpecDecApp, "run", lambda self: apps.append(self))
    assert cli.main(["--replay", str(DATA / "greedy.jsonl")]) == 0
    assert apps and apps[0].no_color


# ---- threads ------------------------------------------------------------------------------------------------


@pytest.fixture
def restore_threads():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_threads_setting_is_validated():
    with pytest.raises(ConfigError, match="threads must be between 1"):
        SpecConfig(threads=0).validated()


def test_threads_are_applied_and_reported_in_the_headless_summary(tiny, restore_threads, capsys):
    import torch

    from specdec_tui.cli import main

    assert main(["--headless", "--json", "--verifier", tiny["verifier"], "--max-new-tokens", "3", "--threads", "1"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["threads"] == 1 and torch.get_num_threads() == 1
    assert main(["--headless", "--verifier", tiny["verifier"], "--max-new-tokens", "3", "--threads", "1"]) == 0
    assert "threads=1" in capsys.readouterr().out


def test_the_default_thread_count_leaves_cores_to_busy_processes():
    """Measured (engine/models/threads.py): a second thread is 1.6x alone and 7x slower beside another busy process."""
    from engine.models.threads import auto_threads

    assert auto_threads(cores=2, busy=0.1) == 2
    assert auto_threads(cores=2, busy=0.9) == 1
    assert auto_threads(cores=2, busy=3.0) == 1  # never below one
    assert auto_threads(cores=8, busy=2.2) == 6
    assert auto_threads(cores=4, busy=None) == 4  # load unknown (not Linux): torch's default


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads Linux /proc")
def test_a_busy_process_is_seen_and_our_own_work_is_not():
    import threading
    import time

    from engine.models.threads import busy_elsewhere

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert busy_elsewhere(window=0.5) >= 0.5
    finally:
        spinner.kill()
        spinner.wait()
    before = busy_elsewhere(window=0.5)  # whatever else this machine runs (a parallel test run, say)
    stop = threading.Event()
    own = threading.Thread(target=lambda: [None for _ in iter(stop.is_set, True)])  # this process spinning
    own.start()
    try:
        assert busy_elsewhere(window=0.5) < before + 0.5  # our own core of work is not counted
    finally:
        stop.set()
        own.join()


@pytest.mark.anyio
async def test_the_stats_panel_shows_the_thread_count(tiny, restore_threads):
    from specdec_tui.app import SpecDecApp

    app = SpecDecApp(config=SpecConfig(verifier=tiny["verifier"], drafter="same", max_new_tokens=4, threads=1))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("m")  # the full stats (the plain view leaves threads out)
        assert "threads 1" in str(app.query_one("#stats-text").render())
