"""What the app steps through: the live engine, or a recorded trace. Called from worker threads only.

A lock serialises all model work, so a step abandoned by a reset finishes before the reset touches the caches.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Callable, Protocol

from engine import (EngineError, SpecConfig, Stats, StepResult, read_trace, trace_header, unique_path,
                    write_trace)

from .view_model import Snapshot

Progress = Callable[[str, float], None]


class Driver(Protocol):
    """What the app steps through. Capabilities say what a driver can do, so the app never asks what it is."""

    can_configure: bool  # settings (k, modes, drafter, prompt) can change between steps
    has_models: bool  # models are loaded: plain decoding (the baseline) can run
    warnings: tuple[str, ...]  # what the user should know that did not stop the run (a cache that was not written)

    @property
    def title(self) -> str: ...

    @property
    def loaded(self) -> bool: ...  # load() succeeded (a refused prompt can still be fixed)

    def load(self, progress: Progress) -> None: ...

    def reset(self, prompt: str) -> Snapshot: ...

    def step(self, changes: dict) -> tuple[StepResult, Snapshot]: ...

    def drafter_choices(self) -> list[str]: ...

    def switch_drafter(self, spec: str, prompt: str) -> Snapshot: ...

    def baseline(self) -> Snapshot: ...

    def save(self, folder: str = ".") -> Path: ...


def trace_path(folder: str) -> Path:
    return unique_path(folder, f"specdec-trace-{datetime.now():%Y%m%d-%H%M%S}")  # two saves in a second: -2


class EngineDriver:
    can_configure = True
    has_models = True

    def __init__(self, config: SpecConfig):
        self.config = config
        self.session = None
        self.lock = threading.Lock()
        self.speed_check = None  # SpeedCheck of the current prompt and settings, once `b` ran it
        self.plain_step_s: float | None = None  # measured once, after loading (engine.forward.costs)
        self.pass_s: dict[int, float] = {}  # tokens -> seconds of a verify pass that size, measured once each

    @property
    def title(self) -> str:
        config = self.session.config if self.session else self.config
        return f"verifier {config.verifier} · drafter {config.drafter}"

    @property
    def loaded(self) -> bool:
        return self.session is not None

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.session.warnings if self.session else ()

    def drafter_choices(self) -> list[str]:
        """What `d` cycles through: the drafter asked for on the command line, then the built-in ones."""
        from engine import drafter_choices, resolve_spec

        chosen = resolve_spec(self.config.drafter, self.config.verifier)  # `auto` is the head or same
        return list(dict.fromkeys([chosen] + drafter_choices(self.config.verifier)))

    def switch_drafter(self, spec: str, prompt: str) -> Snapshot:
        with self.lock:
            if not self.session.prompt:
                self.session.prompt = prompt
            self.session.switch_drafter(spec)
            self.speed_check = None
            return self.snapshot()

    def load(self, progress: Progress) -> None:
        from engine import Session, check_drafter_spec  # imports torch: only in the worker, never at app start-up

        check_drafter_spec(self.config)  # before the verifier loads: a bad drafter fails at once
        with self.lock:
            self.session = Session.from_config(self.config, progress=progress)

    def snapshot(self) -> Snapshot:
        s = self.session
        return Snapshot(
            prompt_pieces=tuple(s.prompt_pieces),
            steps=tuple(s.steps),
            stats=s.stats,
            finished=s.finish_reason,
            block_size=s.block_size,
            config=s.config,
            baseline_note=self.baseline_note(),
            plain_step_s=self.plain_step_s,
            threads=s.threads,
            speed_check=self.speed_check,
            tree_pass_s=self.tree_pass_costs(),
        )

    def tree_pass_costs(self) -> tuple[tuple[int, float], ...]:
        """(tokens, seconds) of a verify pass over the tree's nodes + 1 and over the chain of its depth + 1: what
        the extra branches cost. Measured once per size, in a tight loop (engine.pass_seconds)."""
        from engine import parse_tree, pass_seconds

        s = self.session
        shape = parse_tree(s.config.tree)
        if shape is None or not s.tokens:
            return ()
        sizes = (shape.max_nodes(s.block_size) + 1, shape.depth(s.block_size) + 1)
        for tokens in sizes:
            if tokens not in self.pass_s:
                self.pass_s[tokens] = pass_seconds(s, tokens)
        return tuple((tokens, self.pass_s[tokens]) for tokens in sizes)

    def baseline_note(self) -> str | None:
        """Live output against plain decoding (recomputed after every step, so it never goes stale), and the speed
        check that `b` timed: both decoders in tight loops, since live steps idle between them and run slower."""
        s, check = self.session, self.speed_check
        if check is None:
            return None
        # The live run against plain decoding (recomputed after every step); before any live step (after `r`),
        # the speed check's own run, so the note never says "identical over 0 tokens".
        live = s.compare(check.plain)
        if live.compared_tokens:
            n, differ, whose = live.compared_tokens, live.first_difference, "of this run"
        else:
            spec = list(check.speculative_token_ids)
            plain = list(check.plain.token_ids[len(check.plain.token_ids) - check.plain.new_tokens:])
            n, whose = min(len(spec), len(plain)), "of the check"
            differ = next((i for i in range(n) if spec[i] != plain[i]), None)
        if s.config.verify == "greedy":
            same = "identical to plain decoding" if differ is None else f"DIFFERS from plain at token {differ}"
            same += f" · over {n} tokens {whose}"
        else:
            same = "sampling: compare distributions, not texts"
        # Parts joined by " · ": the stats panel puts each on its own line, the status bar on one.
        note = (f"speed-up {check.speedup:.2f}x, no pauses · {check.speculative_tokens_per_s:.1f} vs "
                f"{check.plain.tokens_per_s:.1f} tok/s, {len(check.speculative_token_ids)} tokens each · {same}")
        # A busy CPU during one run makes the ratio meaningless: say so first, where it cannot be missed.
        return f"CPU busy: {check.busy} · {note}" if check.busy else note

    def reset(self, prompt: str) -> Snapshot:
        with self.lock:
            self.session.reset(prompt)
            self.speed_check = None  # it belonged to the previous prompt
            if self.plain_step_s is None:
                from engine import plain_step_seconds

                self.plain_step_s = plain_step_seconds(self.session)
            return self.snapshot()

    def step(self, changes: dict) -> tuple[StepResult, Snapshot]:
        with self.lock:
            if changes:
                self.session.configure(**changes)
                self.speed_check = None  # it timed other settings
            result = self.session.step()
            return result, self.snapshot()

    def baseline(self) -> Snapshot:
        with self.lock:
            self.speed_check = self.session.speed_check()
            return self.snapshot()

    def save(self, folder: str = ".") -> Path:
        with self.lock:
            s = self.session
            head = trace_header(s.config.to_dict(), s.prompt, s.prompt_ids, s.prompt_pieces)
            return write_trace(trace_path(folder), head, s.steps, s.summary(self.plain_step_s).to_dict())


class ReplayDriver:
    """Steps through a recorded trace with no model: the same screen, the recorded numbers."""

    can_configure = False
    has_models = False
    warnings: tuple[str, ...] = ()  # a replay loads no model

    def __init__(self, path: str):
        self.path = path
        self.trace = None
        self.position = 0
        self.lock = threading.Lock()

    @property
    def config(self) -> SpecConfig:
        return SpecConfig.from_dict(self.trace.header.get("config", {})) if self.trace else SpecConfig()

    @property
    def title(self) -> str:
        name = Path(self.path).name
        if not self.trace:
            return f"replay {name}"
        return f"replay {name} · verifier {self.config.verifier} · drafter {self.config.drafter}"

    @property
    def loaded(self) -> bool:
        return self.trace is not None

    @property
    def prompt(self) -> str:
        return self.trace.header.get("prompt", "") if self.trace else ""

    def load(self, progress: Progress) -> None:
        progress(f"reading {self.path}", 0.5)
        self.trace = read_trace(self.path)
        progress(f"{self.path}: {len(self.trace.steps)} steps", 1.0)

    def snapshot(self) -> Snapshot:
        steps = self.trace.steps[: self.position]
        stats = Stats.from_steps(steps)
        done = steps[-1].finish_reason if steps else None
        if done is None and self.position == len(self.trace.steps):
            done = "end of trace"
        block = steps[-1].block_size if steps else self.config.block_size
        return Snapshot(
            prompt_pieces=tuple(self.trace.prompt_pieces),
            steps=tuple(steps),
            stats=stats,
            finished=done,
            block_size=block,
            config=self.config,
            warnings=self.trace.warnings,
            plain_step_s=(self.trace.summary or {}).get("plain_step_s"),
            threads=self.recorded_threads,
        )

    @property
    def recorded_threads(self) -> int | None:
        recorded = (self.trace.summary or {}).get("threads")  # the count in use; the config has None for torch's
        return self.config.threads or (recorded if isinstance(recorded, int) and not isinstance(recorded, bool) else None)

    def reset(self, prompt: str) -> Snapshot:
        self.position = 0
        return self.snapshot()

    def step(self, changes: dict) -> tuple[StepResult, Snapshot]:
        if changes:
            raise EngineError("this is a replay: its settings are fixed by the trace")
        if self.position >= len(self.trace.steps):
            raise EngineError("the trace has no more steps: press r to replay it from the start")
        self.position += 1
        return self.trace.steps[self.position - 1], self.snapshot()

    def drafter_choices(self) -> list[str]:
        return [self.config.drafter]

    def switch_drafter(self, spec: str, prompt: str) -> Snapshot:
        raise EngineError("this is a replay: its drafter is fixed by the trace")

    def baseline(self) -> Snapshot:
        raise EngineError("the baseline needs the models; a replay has none (run without --replay)")

    def save(self, folder: str = ".") -> Path:
        head = dict(self.trace.header)
        return write_trace(trace_path(folder), head, self.trace.steps[: self.position])
