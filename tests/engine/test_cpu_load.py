"""A busy CPU is noticed (engine/forward/cpu_load.py): steps and the speed check say their timings are unreliable, and the
thread count follows the other processes' load. /proc is replaced by a scripted clock so the tests do not depend on
what else this machine runs."""

import itertools

import pytest
import torch

from conftest import make_session
from engine.forward import cpu_load
from engine.models import threads
from engine.forward.cpu_load import CALM_STEPS, LoadWatch, Sample, busy_reason


class ScriptedCpu:
    """Sample.now() stand-in: each call advances 0.1 s, during which other processes use `others` cores."""

    def __init__(self, others: float = 0.0):
        self.others = others
        self.ticks, self.clock = 0.0, itertools.count()

    def __call__(self) -> Sample:
        step = next(self.clock)
        self.ticks += self.others * 0.1 * 100  # 100 clock ticks a second (os.sysconf SC_CLK_TCK on Linux)
        return Sample(busy_ticks=int(self.ticks), own_ticks=0, at=0.1 * step)


@pytest.fixture
def cpu(monkeypatch):
    scripted = ScriptedCpu()
    monkeypatch.setattr(cpu_load.os, "sysconf", lambda name: 100)
    monkeypatch.setattr(cpu_load.Sample, "now", classmethod(lambda cls: scripted()))
    return scripted


@pytest.fixture
def keep_threads(monkeypatch):
    """Restores the thread count afterwards; and real passes' timings are left out (only the scripted load counts)."""
    monkeypatch.setattr(cpu_load, "SLOWDOWN", float("inf"))
    monkeypatch.setattr(threads, "_AUTO", threads._AUTO)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_the_flag_names_its_reason_and_clears_only_after_calm_steps(cpu):
    watch = LoadWatch()
    assert watch.check(3, 0.05) is None
    cpu.others = 1.0
    assert watch.check(3, 0.05) == "other processes used 1.0 cores"
    cpu.others = 0.0
    for _ in range(CALM_STEPS - 1):
        assert watch.check(3, 0.05) is not None  # one calm step is no proof
    assert watch.check(3, 0.05) is None
    assert watch.check(3, 0.20) == "a verify pass took 4.0x its fastest"  # against the fastest pass of 3 rows
    assert busy_reason(0.4, 2.9) is None


def test_steps_taken_while_another_process_runs_are_flagged_and_the_threads_follow(tiny_verifier, cpu, keep_threads):
    session = make_session(tiny_verifier, "ngram", block_size=2, max_new_tokens=12)
    session.reset("def add(a, b):")
    cpu.others = 1.0
    first = session.step()
    assert first.cpu_busy == "other processes used 1.0 cores"
    assert session.threads == threads.auto_threads(busy=1.0) == max(1, threads._TORCH_DEFAULT - 1)
    cpu.others = 0.0
    session.run()
    assert session.stats.busy_steps == CALM_STEPS  # the busy step and the calm ones before the flag cleared
    assert session.steps[-1].cpu_busy is None
    assert session.threads == threads._TORCH_DEFAULT


def test_the_speed_check_says_when_its_two_runs_are_not_comparable(tiny_verifier, cpu, keep_threads):
    session = make_session(tiny_verifier, "ngram", block_size=2, max_new_tokens=8)
    session.reset("def add(a, b):")
    assert session.speed_check().busy is None
    cpu.others = 1.5
    assert session.speed_check().busy.startswith("not comparable: other processes used 1.5 cores during the plain run")


def test_headless_reports_busy_steps(tiny, cpu, keep_threads, capsys):
    from specdec_tui.cli import main

    cpu.others = 2.0
    assert main(["--headless", "--verifier", tiny["verifier"], "--drafter", "ngram", "-k", "2",
                 "--max-new-tokens", "6"]) == 0
    assert "CPU busy: timings unreliable (" in capsys.readouterr().out
