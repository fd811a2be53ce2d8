"""The headless run: the same loop as the app, printed one line per step (or as JSON Lines). No textual here."""

from __future__ import annotations

import os
import sys

from engine import (EngineError, Session, SpecConfig, TraceWriter, check_drafter_spec, check_target, json_line, shown,
                    trace_header)

from .narration import narrate, notebook_lines
from .options import config_from_args, parse_sweep
from .stopping import Stopped, signals_stop


def _progress(message: str, fraction: float) -> None:
    print(f"[load {fraction:4.0%}] {shown(message, keep='')}", file=sys.stderr, flush=True)


def _error(message: object) -> None:
    print(f"specdec-tui: {shown(message, keep='')}", file=sys.stderr, flush=True)


class PipeClosed(Exception):
    """The reader of stdout went away (`--headless --json | head -3`): stop quietly, as the reader wanted."""


def _emit(args, record: dict, text: str) -> None:
    try:
        print(json_line(record) if args.json else text, flush=True)
    except BrokenPipeError:
        # Everything printed from here on (the summary, Python's own flush at exit) goes nowhere, not into a
        # BrokenPipeError traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise PipeClosed from None


def summary(session: Session, comparison=None, plain_step_s: float | None = None) -> dict:
    out = session.summary(plain_step_s).to_dict()
    if comparison is not None:
        baseline = comparison.baseline
        out.update(
            baseline_text=baseline.text,
            baseline_tokens_per_s=baseline.tokens_per_s,
            lossless=comparison.lossless if session.config.verify == "greedy" else None,
            speedup=comparison.speedup,
        )
    return out


def run_headless(args) -> int:
    # SIGTERM and SIGHUP stop the run as Ctrl+C does: the trace is finished and the summary printed.
    with signals_stop():
        try:
            return _run(args)
        except (BrokenPipeError, PipeClosed):  # a header or summary line written after the reader left
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0


def _run(args) -> int:
    if args.sweep:
        try:
            return run_sweep(args)
        except EngineError as error:
            _error(error)
            return 2
        except KeyboardInterrupt as stop:
            _error("interrupted: the sweep stopped before its table")
            return Stopped.exit_code(stop)
    try:
        config = config_from_args(args)
        if args.trace:
            check_target(args.trace, overwrite=args.force)  # before the models load, not after the run
        check_drafter_spec(config)  # a drafter that cannot load fails before the verifier loads
        session = Session.from_config(config, progress=None if args.json else _progress)
        for warning in session.warnings:
            _error(f"warning: {warning}")
        session.reset(args.prompt)
        writer = TraceWriter(args.trace, _header(session)) if args.trace else None
    except EngineError as error:
        _error(error)
        return 2
    except KeyboardInterrupt as stop:
        _error("interrupted while loading")
        return Stopped.exit_code(stop)
    code = 0
    try:
        while not session.finished:
            result = session.step()
            if writer:
                writer.step(result)
            line = (
                f"[step {result.step}] accepted={result.accepted}/{result.drafted}, "
                f"acc_rate_so_far={100 * session.stats.acceptance_rate:.1f}%, emitted={result.emitted_text!r}"
            )
            record = {"type": "step", "step": result.step, "drafted": result.drafted, "accepted": result.accepted,
                      "emitted_text": result.emitted_text, "acceptance_rate_so_far": session.stats.acceptance_rate,
                      "step_s": result.step_s, "plan": result.plan, "cpu_busy": result.cpu_busy}
            if args.explain:  # the notebook's per-position lines, then the step in plain words
                positions = notebook_lines(result)
                record.update(positions=positions, narration=narrate(result))
                line = "\n".join([line, *(f"    {p}" for p in positions), f"    {narrate(result)}"])
            _emit(args, record, line)
    except KeyboardInterrupt as stop:
        code = Stopped.exit_code(stop)
    except PipeClosed:
        code = -1  # finish the trace; nothing more to print or measure
    except EngineError as error:
        _error(error)
        code = 1
    comparison, plain_step_s = None, None
    if code == 0:
        try:
            if args.compare_baseline:
                comparison = session.compare(session.baseline())
            from engine import plain_step_seconds

            plain_step_s = plain_step_seconds(session)  # the unit of c and r, measured after the run
        except KeyboardInterrupt as stop:
            code = Stopped.exit_code(stop)
        except EngineError as error:  # e.g. the verifier's server went away after the last step
            _error(error)
            code = 1
    with signals_stop(ignore=True):  # a second signal must not cut the trace or the summary short
        result = summary(session, comparison, plain_step_s)
        if code > 128:
            result["interrupted_by"] = Stopped.name(code)
        trace_error = None
        if writer:  # the trace first: after a SIGHUP the terminal may be gone and printing fail
            try:
                writer.summary(result)
                writer.close()
            except (OSError, EngineError) as error:
                trace_error, code = error, code or 1
        try:
            if code == -1:
                return 0
            if code > 128:
                _error(f"interrupted ({Stopped.name(code)}); summary so far:")
            if trace_error:
                _error(trace_error)
            if args.json:
                print(json_line(result), flush=True)
            else:
                _print_summary(result)
        except OSError:  # no terminal any more (SIGHUP): the trace is already safe
            pass
    return code


def _header(session: Session) -> dict:
    return trace_header(session.config.to_dict(), session.prompt, session.prompt_ids, session.prompt_pieces)


def _print_summary(s: dict) -> None:
    print("text:")
    print(shown(s["text"], keep="\n\t"))
    print(
        f"steps={s['steps']} drafted={s['drafted']} accepted={s['accepted']} "
        f"acceptance={100 * s['acceptance_rate']:.1f}% tokens/step={s['mean_tokens_per_step']:.2f} "
        f"tokens/verifier-call={s['tokens_per_verifier_call']:.2f} tokens/s={s['tokens_per_s']:.1f} threads={s['threads']}"
        + (" forward=bf16" if s.get("forward") == "bf16" else "")
    )
    if s.get("tree"):
        print(f"tree {s['tree']}: nodes verified/step={s['nodes_per_step']:.1f} "
              f"accepted path/step={s['mean_accepted']:.2f} tokens/verifier-call={s['tokens_per_verifier_call']:.2f}")
    if s.get("expected_tokens_per_step") is not None and not s.get("tree"):  # the chain formula does not describe a tree
        r = "" if s.get("verify_cost_ratio") is None else f" r={s['verify_cost_ratio']:.2f}"
        print(
            f"theory: c={s['cost_ratio']:.2f}{r} expected tokens/step={s['expected_tokens_per_step']:.2f} "
            f"expected speed-up={s['expected_speedup']:.2f}x best k={s['best_k']} "
            "(c, r: draft token, verify pass / one plain decoding step)"
        )
    if s.get("auto"):
        chosen = ", ".join(f"{label} {count}x" for label, count in s["auto_choices"].items())
        print(f"{s['auto']} (chosen per step: {chosen})")
    if s.get("busy_steps"):
        print(f"CPU busy: timings unreliable ({s['busy_steps']} of {s['steps']} steps ran while other processes "
              "used the CPU or a verify pass took 3x its fastest)")
    if "speedup" in s:
        lossless = {True: "identical to plain decoding", False: "DIFFERS from plain decoding", None: "sampled (not compared)"}
        print(f"baseline: {s['baseline_tokens_per_s']:.1f} tokens/s; speed-up {s['speedup']:.2f}x; {lossless[s['lossless']]}")


def run_sweep(args) -> int:
    """Every block size (and drafter) on one prompt; models are loaded once.

    Each cell is paired with a plain-decoding run just before it (round robin, as bench/run.py does), so a slow
    spell of the machine hits both sides of a speed-up alike; each row is printed as soon as its cell finishes.
    """
    from engine import build_drafter, load_verifier

    sizes = parse_sweep(args.sweep)
    drafters = [d.strip() for d in args.drafter.split(",") if d.strip()]
    base_config = config_from_args(args, drafter=drafters[0], block_size=sizes[0])
    verifier = load_verifier(base_config, None if args.json else _progress)
    built = {spec: build_drafter(base_config.replace(drafter=spec), verifier) for spec in drafters}
    if not args.json:
        print(f"{'k':>3} {'drafter':<16} {'accept':>7} {'tok/call':>8} {'tok/s':>7} {'plain':>7} {'speed-up':>8} lossless",
              flush=True)
    warm_up = Session(base_config, verifier, built[drafters[0]])
    warm_up.reset(args.prompt)
    warm_up.baseline(max_new_tokens=4)  # the first forward passes of a process are slow: keep them out of the table
    baselines, done = [], []
    try:
        for drafter_spec in drafters:
            for k in sizes:
                row = _sweep_cell(args, verifier, built[drafter_spec], drafter_spec, k)
                baselines.append(row["baseline_tokens_per_s"])
                twin = _same_work(row, done)
                if twin is not None:  # the same work timed twice: what differs is the machine, not the method
                    row["note"] = f"same work as k={twin['k']} {twin['drafter']}: the speed-up gap is timing noise"
                done.append(row)
                _emit(args, row, _sweep_line(row) + (f"  ({shown(row['note'], keep='')})" if twin else ""))
    except PipeClosed:
        return 0
    except KeyboardInterrupt:
        print("specdec-tui: sweep interrupted; the rows above are complete", file=sys.stderr)
        return 130
    if not args.json:
        low, high = min(baselines), max(baselines)
        print(f"plain = plain greedy decoding of the verifier, measured just before each cell ({low:.1f}-{high:.1f} tokens/s)")
        print("speed-ups move by 0.1-0.3 between runs on a shared CPU (timing noise); acceptance and tok/call do not")
    return 0


def _sweep_cell(args, verifier, drafter, drafter_spec: str, k: int) -> dict:
    config: SpecConfig = config_from_args(args, drafter=drafter_spec, block_size=k)
    session = Session(config, verifier, drafter)
    session.reset(args.prompt)
    baseline = session.baseline()
    session.run()
    comparison = session.compare(baseline)
    stats = session.stats
    return {"type": "sweep", "k": k, "drafter": drafter_spec,
            "acceptance_rate": stats.acceptance_rate if stats.drafted else None,  # nothing drafted: no rate
            "drafted": stats.drafted, "tokens_per_verifier_call": stats.tokens_per_verifier_call,
            "tokens_per_s": stats.tokens_per_s, "baseline_tokens_per_s": baseline.tokens_per_s,
            "speedup": comparison.speedup, "lossless": comparison.lossless if config.verify == "greedy" else None}


def _same_work(row: dict, done: list[dict]) -> dict | None:
    """An earlier row with the same acceptance and tokens per verifier call: the same accepted drafts, step by step."""
    for other in done:
        if (other["acceptance_rate"] == row["acceptance_rate"] and other["drafted"] == row["drafted"]
                and other["tokens_per_verifier_call"] == row["tokens_per_verifier_call"]):
            return other
    return None


def _sweep_line(r: dict) -> str:
    accept = "n/a" if r["acceptance_rate"] is None else f"{100 * r['acceptance_rate']:.1f}%"
    return (f"{r['k']:>3} {shown(r['drafter'], keep=''):<16} {accept:>7} {r['tokens_per_verifier_call']:>8.2f} "
            f"{r['tokens_per_s']:>7.1f} {r['baseline_tokens_per_s']:>7.1f} {r['speedup']:>7.2f}x {r['lossless']}")
