"""The headless command and JSON Lines traces."""

import json
import os
import signal

import pytest

from conftest import headless_run_past_first_step
from engine import TraceError
from engine.records.trace import read_trace
from specdec_tui.cli import main

SUMMARY_KEYS = {
    "text", "generated_text", "new_tokens", "steps", "drafted", "accepted", "acceptance_rate", "mean_tokens_per_step",
    "per_position_acceptance", "verifier_calls", "tokens_per_verifier_call", "wall_s", "tokens_per_s",
    "baseline_text", "baseline_tokens_per_s", "lossless", "speedup", "expected_tokens_per_step", "expected_speedup",
    "best_k",
}


def test_headless_text_lines(tiny, capsys):
    assert main(["--headless", "--verifier", tiny["verifier"], "--drafter", tiny["drafter"], "--max-new-tokens", "12"]) == 0
    out = capsys.readouterr().out
    assert "[step 1] accepted=" in out and "acc_rate_so_far=" in out
    assert "text:\nIn a distant future," in out


def test_headless_json_with_baseline_and_trace(tiny, tmp_path, capsys):
    trace = tmp_path / "run.jsonl"
    code = main(["--headless", "--json", "--verifier", tiny["verifier"], "--drafter", tiny["drafter"],
                 "--draft-mode", "greedy", "--max-new-tokens", "16", "--compare-baseline", "--trace", str(trace)])
    assert code == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    steps, summary = records[:-1], records[-1]
    assert all(r["type"] == "step" for r in steps) and summary["type"] == "summary"
    assert SUMMARY_KEYS <= summary.keys()
    assert summary["lossless"] is True and summary["new_tokens"] == 16
    assert summary["text"] == summary["baseline_text"]
    replayed = read_trace(trace)
    assert len(replayed.steps) == summary["steps"] == len(steps)
    assert replayed.steps[0].positions[0].verifier_top  # top-5 alternatives travel in the trace
    # -k auto is the default: each step's choice and why travel too
    assert replayed.steps[0].plan == steps[0]["plan"] and replayed.steps[0].plan.startswith("auto: chain k=")


def test_headless_bad_settings_exit_2_with_one_line(tiny, capsys):
    assert main(["--headless", "--verifier", tiny["verifier"], "--block-size", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "block size must be between 1 and 16" in err[0]


def test_headless_unknown_model_exit_2(capsys):
    assert main(["--headless", "--verifier", "no-such-model-xyz"]) == 2
    assert "no-such-model-xyz" in capsys.readouterr().err


def test_sweep_table(tiny, capsys):
    assert main(["--headless", "--verifier", tiny["verifier"], "--drafter", "same,ngram", "--sweep", "1-2",
                 "--draft-mode", "greedy", "--max-new-tokens", "8"]) == 0
    out = capsys.readouterr().out
    assert "speed-up" in out and out.count("same") >= 2 and out.count("ngram") >= 2


@pytest.mark.embedded
def test_ctrl_c_prints_summary_and_exits_130(embedded, tmp_path):
    # The embedded model (8192-token window, ~0.1 s a step) cannot finish before the signal arrives; the tiny
    # test model reached its 256-token window within a second and sometimes exited 0 first.
    trace = tmp_path / "partial.jsonl"
    proc = headless_run_past_first_step(trace, (signal.SIGINT,))
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in err and "steps=" in out
    assert read_trace(trace).steps  # what was written so far stays readable


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_trace_errors(tmp_path):
    with pytest.raises(TraceError, match="no such trace file"):
        read_trace(tmp_path / "missing.jsonl")
    with pytest.raises(TraceError, match="empty"):
        read_trace(_write(tmp_path / "empty.jsonl", []))
    with pytest.raises(TraceError, match="corrupt at line 2"):
        read_trace(_write(tmp_path / "corrupt.jsonl", ['{"type": "header", "format": 1}', "{not json", '{"type": "step"}']))
    # A first line that is not JSON is some other file (issue 26: `--replay /etc/passwd`), not a damaged trace.
    with pytest.raises(TraceError, match="is not a specdec-tui trace .its first line is not JSON"):
        read_trace(_write(tmp_path / "passwd", ["root:x:0:0:root:/root:/bin/bash", "daemon:x:1:1::/:/bin/sh"]))
    binary = tmp_path / "binary"
    binary.write_bytes(b"\x7fELF\xd0\xff\x00")
    with pytest.raises(TraceError, match="not a specdec-tui trace .not UTF-8"):
        read_trace(binary)
    with pytest.raises(TraceError, match="format 99"):
        read_trace(_write(tmp_path / "newer.jsonl", ['{"type": "header", "format": 99}']))
    with pytest.raises(TraceError, match="not a specdec-tui trace"):
        read_trace(_write(tmp_path / "other.jsonl", ['{"hello": 1}']))


def test_truncated_last_line_is_skipped_with_a_warning(tmp_path):
    source = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "greedy.jsonl")
    lines = open(source).read().splitlines()
    broken = _write(tmp_path / "cut.jsonl", lines[:4] + [lines[4][:50]])
    trace = read_trace(broken)
    assert len(trace.steps) == 3 and "truncated" in trace.warnings[0]


def test_saving_into_an_unwritable_folder_is_a_clear_error(tmp_path):
    from engine.records.trace import write_trace

    with pytest.raises(TraceError, match="cannot write trace"):
        write_trace(tmp_path / "no" / "such" / "dir" / "t.jsonl", {"type": "header", "format": 1}, [])
    assert not list(tmp_path.rglob("*.partial"))


def test_sweep_pairs_each_cell_with_its_own_baseline_and_prints_as_it_goes(tiny, capsys, monkeypatch):
    from engine.session import Session

    baselines, runs = [], []
    real_baseline, real_run = Session.baseline, Session.run

    def counted_baseline(self, max_new_tokens=None):
        baselines.append(max_new_tokens)
        return real_baseline(self, max_new_tokens)

    def interrupted_run(self, on_step=None):
        runs.append(1)
        if len(runs) == 3:
            raise KeyboardInterrupt  # Ctrl+C during the third cell
        return real_run(self, on_step)

    monkeypatch.setattr(Session, "baseline", counted_baseline)
    monkeypatch.setattr(Session, "run", interrupted_run)
    code = main(["--headless", "--verifier", tiny["verifier"], "--drafter", "same", "--sweep", "1-4",
                 "--draft-mode", "greedy", "--max-new-tokens", "6"])
    out = capsys.readouterr()
    assert code == 130 and "interrupted" in out.err
    rows = [line for line in out.out.splitlines() if line.split()[:2] in (["1", "same"], ["2", "same"])]
    assert len(rows) == 2  # the finished cells were printed before the interruption
    assert baselines == [4, None, None, None]  # a warm-up, then one plain run beside each cell


def test_sweep_says_n_a_when_nothing_was_drafted(tiny, capsys):
    args = ["--headless", "--verifier", tiny["verifier"], "--drafter", "ngram", "--sweep", "2-2", "--max-new-tokens", "2",
            "--prompt", "ab"]
    assert main([*args, "--json"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert row["drafted"] == 0 and row["acceptance_rate"] is None  # not 0.0: nothing was drafted
    assert main(args) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if "ngram" in line)
    assert "n/a" in line and "0.0%" not in line


def test_headless_tree_summary_has_no_chain_theory_line(tiny, capsys):
    """The chain formula (tokens per call / (r + k c)) does not describe a tree: a tree run does not print it."""
    assert main(["--headless", "--verifier", tiny["verifier"], "--drafter", tiny["drafter"], "--max-new-tokens", "8"]) == 0
    assert "theory: c=" in capsys.readouterr().out
    assert main(["--headless", "--verifier", tiny["verifier"], "--drafter", tiny["drafter"], "--tree", "2,1",
                 "--max-new-tokens", "8"]) == 0
    out = capsys.readouterr().out
    assert "tree 2,1: nodes verified/step=" in out and "theory: c=" not in out
