"""Trace files, saves, signals and the model cache: bad luck and hostile files lose nothing and print no traceback."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import headless_run_past_first_step
from engine import TraceError
from engine.records.trace import check_target, read_trace
from specdec_tui.cli import main
from specdec_tui.driver import ReplayDriver

DATA = Path(__file__).parent.parent / "data"


def tiny_args(tiny, *extra):
    return ["--headless", "--verifier", tiny["verifier"], "--drafter", tiny["drafter"], "--max-new-tokens", "6", *extra]


# ---- --trace targets ------------------------------------------------------------------------------------------


def test_a_folder_as_trace_is_refused_before_the_run(tiny, tmp_path, capsys):
    assert main(tiny_args(tiny, "--trace", str(tmp_path))) == 2
    captured = capsys.readouterr()
    assert "is a folder" in captured.err and "[step" not in captured.out  # refused before any step ran
    assert not list(tmp_path.iterdir())  # no stray .partial


def test_an_existing_trace_is_kept_unless_forced(tiny, tmp_path, capsys):
    trace = tmp_path / "run.jsonl"
    trace.write_text("my precious notes\n")
    assert main(tiny_args(tiny, "--trace", str(trace))) == 2
    assert "already exists" in capsys.readouterr().err and trace.read_text() == "my precious notes\n"
    assert main(tiny_args(tiny, "--trace", str(trace), "--force")) == 0
    assert read_trace(trace).steps


def test_a_device_is_never_replaced_by_a_trace():
    with pytest.raises(TraceError, match="not a regular file"):
        check_target("/dev/null", overwrite=True)
    assert Path("/dev/null").is_char_device()


def test_two_saves_in_the_same_second_keep_both(tmp_path):
    driver = ReplayDriver(str(DATA / "greedy.jsonl"))
    driver.load(lambda text, fraction: None)
    driver.step({})
    driver.step({})
    first = driver.save(str(tmp_path))
    driver.reset("")
    second = driver.save(str(tmp_path))  # `s r s`: a save of no steps right after one of two steps
    assert first != second
    assert len(read_trace(first).steps) == 2 and len(read_trace(second).steps) == 0


# ---- crafted traces ---------------------------------------------------------------------------------------------


def _records():
    return [json.loads(line) for line in (DATA / "greedy.jsonl").read_text().splitlines() if line.strip()]


def _write(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _step(records, n):
    return records[n]  # line n + 1 of the file


CRAFTED = {
    "empty positions": (lambda r: _step(r, 2).update(positions=[]), 3, "positions"),
    "negative accepted": (lambda r: _step(r, 1).update(accepted=-3), 2, "'accepted'"),
    "NaN probability": (lambda r: _step(r, 1)["positions"][0].update(p_verifier=math.nan), 2, "finite number"),
    "k = 10000": (lambda r: _step(r, 1).update(block_size=10000), 2, "'block_size' must be between 1 and 16"),
    "steps out of order": (lambda r: _step(r, 2).update(step=7), 3, "expected step 2"),
    "wrong type": (lambda r: _step(r, 1).update(drafted="four"), 2, "whole number"),
    "text that is not text": (lambda r: _step(r, 1)["emitted"][0].update(piece=["x"]), 2, "'piece' must be text"),
    "accepted contradicts decisions": (lambda r: _step(r, 1).update(accepted=2), 2, "say otherwise"),
    "bad config in the header": (lambda r: r[0]["config"].update(block_size=0), 1, "config is not valid"),
}


@pytest.mark.parametrize("name", CRAFTED)
def test_crafted_traces_are_refused_with_the_line_number(tmp_path, name):
    change, line, words = CRAFTED[name]
    records = _records()
    change(records)
    path = _write(tmp_path / "crafted.jsonl", records)
    with pytest.raises(TraceError) as error:
        read_trace(path)
    message = str(error.value)
    assert words in message and (f"line {line}" in message), message


def test_oversized_traces_are_refused_unread(tmp_path, monkeypatch):
    import engine.records.trace

    monkeypatch.setattr(engine.records.trace, "MAX_TRACE_BYTES", 1000)
    with pytest.raises(TraceError, match="the most a trace is read up to"):
        read_trace(DATA / "greedy.jsonl")


# ---- SIGTERM and SIGHUP in a headless run with a trace ------------------------------------------------------


@pytest.mark.embedded
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_finish_the_trace_like_ctrl_c(embedded, tmp_path, signum):
    trace = tmp_path / "partial.jsonl"
    proc = headless_run_past_first_step(trace, (signal.SIGTERM, signal.SIGHUP))
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum
    assert f"interrupted ({signal.Signals(signum).name})" in err and "steps=" in out
    finished = read_trace(trace)
    assert finished.steps and finished.summary["interrupted_by"] == signal.Signals(signum).name
    assert not list(tmp_path.glob(".*.partial"))


# ---- the dequantized-model cache ----------------------------------------------------------------------------


@pytest.fixture
def fake_gguf(tmp_path, monkeypatch, tiny):
    """A .gguf path whose 'dequantization' yields the tiny model (real dequantizing takes ~30 s), a private cache."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import engine.models.loading

    calls = []

    def dequantize(path):
        calls.append(path)
        return AutoModelForCausalLM.from_pretrained(tiny["verifier"]), AutoTokenizer.from_pretrained(tiny["verifier"])

    monkeypatch.setattr(engine.models.loading, "_dequantize", dequantize)
    monkeypatch.setenv("SPECDEC_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF")
    return path, calls


def _progress_log():
    messages = []
    return messages, lambda message, fraction: messages.append(message)


def test_a_full_disk_while_caching_means_no_cache_this_time(fake_gguf, monkeypatch):
    import safetensors.torch
    from safetensors import SafetensorError

    from engine.models.loading import _gguf_cache_dir, load_model

    def full_disk(*args, **kwargs):  # what safetensors raises on ENOSPC (not an OSError)
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })')

    monkeypatch.setattr(safetensors.torch, "save_model", full_disk)
    path, _ = fake_gguf
    loaded = load_model(str(path))
    assert loaded.notes and "no cache this time" in loaded.notes[0] and "No space left on device" in loaded.notes[0]
    cached = _gguf_cache_dir(path)
    assert not cached.exists() and not list(cached.parent.glob(".partial-*"))  # nothing half-written left


def test_an_unwritable_cache_folder_is_said_once_and_not_called_first_start(fake_gguf, tmp_path, monkeypatch):
    from engine.models.loading import load_model

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("SPECDEC_CACHE_DIR", str(blocker / "cache"))  # under a file: unwritable even for root
    path, _ = fake_gguf
    messages, progress = _progress_log()
    loaded = load_model(str(path), progress=progress)
    assert not any("first start only" in m for m in messages)
    assert len(loaded.notes) == 1 and "no cache this time" in loaded.notes[0]


def test_the_app_and_headless_show_the_cache_warning(fake_gguf, monkeypatch, capsys):
    import safetensors.torch

    monkeypatch.setattr(safetensors.torch, "save_model", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    path, _ = fake_gguf
    assert main(["--headless", "--verifier", str(path), "--max-new-tokens", "3"]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: no cache this time") == 1


@pytest.mark.parametrize("damage", [
    lambda config: config.update(num_attention_heads=0),
    lambda config: config.pop("hidden_size"),
    lambda config: config.update(vocab_size="many"),
])
def test_a_damaged_cached_config_is_rebuilt(fake_gguf, damage):
    from engine.models.loading import _gguf_cache_dir, load_model

    path, calls = fake_gguf
    load_model(str(path))
    config_path = _gguf_cache_dir(path) / "config.json"
    config = json.loads(config_path.read_text())
    damage(config)
    config_path.write_text(json.dumps(config))
    loaded = load_model(str(path))  # no traceback: the cache is rebuilt
    assert len(calls) == 2 and loaded.vocab_size > 0
    assert json.loads(config_path.read_text())["num_attention_heads"] == 4


def test_stale_staging_folders_are_removed_at_the_next_start(fake_gguf):
    from engine.models.loading import _gguf_cache_dir, load_model

    path, _ = fake_gguf
    parent = _gguf_cache_dir(path).parent
    parent.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed = parent / f".partial-{dead.stdout.strip()}-abc"  # a first start killed while caching
    live = parent / f".partial-{os.getpid()}-xyz"  # another start caching right now
    old = parent / ".partial-oldstyle"  # an older version's name, untouched for two hours
    for folder in (killed, live, old):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"0" * 100)
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    load_model(str(path))
    assert not killed.exists() and not old.exists() and live.exists()


def test_the_same_gguf_installed_twice_shares_one_cache_entry(fake_gguf, tmp_path):
    """Every fresh virtual environment has its own copy of the embedded GGUF: it must not add another ~520 MB."""
    from engine.models.loading import _gguf_cache_dir, load_model

    path, calls = fake_gguf
    load_model(str(path))
    other_install = tmp_path / "venv2" / "tiny.gguf"
    other_install.parent.mkdir()
    other_install.write_bytes(path.read_bytes())
    load_model(str(other_install))
    assert len(calls) == 1 and _gguf_cache_dir(other_install) == _gguf_cache_dir(path)
    changed = tmp_path / "venv3" / "tiny.gguf"
    changed.parent.mkdir()
    changed.write_bytes(b"GGUF-requantized")
    assert _gguf_cache_dir(changed) != _gguf_cache_dir(path)  # other contents, other entry


def test_a_new_cache_entry_removes_the_same_models_entries_unused_for_two_weeks(fake_gguf):
    from engine.models.loading import _gguf_cache_dir, load_model

    path, _ = fake_gguf
    parent = _gguf_cache_dir(path).parent
    parent.mkdir(parents=True)
    month_ago = time.time() - 30 * 24 * 3600
    old_layout = parent / "tiny-0123456789ab"  # an older transformers' entry of this model
    in_use = parent / "tiny-ba9876543210"  # another install's, used yesterday
    other_model = parent / "tiny-v2-0123456789ab"  # a different model whose name starts alike
    for folder in (old_layout, in_use, other_model):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"0" * 100)
    for folder in (old_layout, other_model):
        os.utime(folder, (month_ago, month_ago))
    os.utime(in_use, (time.time() - 24 * 3600,) * 2)
    load_model(str(path))
    assert not old_layout.exists() and in_use.exists() and other_model.exists()
    assert _gguf_cache_dir(path).exists()


@pytest.mark.anyio
async def test_the_app_says_once_that_there_is_no_cache_this_time(fake_gguf, monkeypatch):
    import safetensors.torch

    from engine import SpecConfig
    from specdec_tui.app import SpecDecApp

    monkeypatch.setattr(safetensors.torch, "save_model", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    path, _ = fake_gguf
    app = SpecDecApp(config=SpecConfig(verifier=str(path), max_new_tokens=4))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        message = app.query_one("#status").message.plain
        assert message.count("no cache this time") == 1 and "models ready" in message


def test_a_device_is_not_read_as_a_trace():
    with pytest.raises(TraceError, match="not a regular file"):
        read_trace("/dev/zero")  # endless: it must be refused, not read into memory


def test_a_line_separator_inside_a_piece_does_not_split_the_record(tmp_path):
    records = _records()
    records[1]["emitted"][0]["piece"] = "a\u2028b\x85c"
    path = tmp_path / "sep.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")  # raw, as older versions wrote
    assert read_trace(path).steps[0].emitted[0].piece == "a\u2028b\x85c"
