"""The headless run: the same loop as the app, printed one line per step (or as JSON Lines). No textual here."""

from __future__ import annotations

import sys

from engine import Session, SpecConfig
from engine.errors import EngineError
from engine.safe_text import json_line, shown
from engine.theory import theory_summary
from engine.trace import TraceWriter, check_target, header

from .options import config_from_args, parse_sweep
from .stopping import Stopped, signals_stop


def _progress(message: str, fraction: float) -> None:
    print(f"[load {fraction:4.0%}] {shown(message, keep='')}", file=sys.stderr, flush=True)


def _error(message: object) -> None:
    print(f"specdec-tui: {shown(message, keep='')}", file=sys.stderr, flush=True)


def _emit(args, record: dict, text: str) -> None:
    print(json_line(record) if args.json else text, flush=True)


def summary(session: Session, comparison=None) -> dict:
    stats = session.stats
    out = {
        "type": "summary",
        "text": session.text,
        "generated_text": session.generated_text,
        "finish_reason": session.finish_reason,
        **stats.summary(),
        **theory_summary(stats, session.config.block_size),
        "verifier": session.config.verifier,
        "drafter": session.config.drafter,
        "block_size": session.config.block_size,
        "threads": session.threads,
    }
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
        return _run(args)


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
                      "step_s": result.step_s}
            _emit(args, record, line)
    except KeyboardInterrupt as stop:
        code = Stopped.exit_code(stop)
    except EngineError as error:
        _error(error)
        code = 1
    comparison = None
    if args.compare_baseline and code == 0:
        try:
            comparison = session.compare(session.baseline())
        except KeyboardInterrupt as stop:
            code = Stopped.exit_code(stop)
    with signals_stop(ignore=True):  # a second signal must not cut the trace or the summary short
        result = summary(session, comparison)
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
    return header(session.config.to_dict(), session.prompt, session.prompt_ids, session.prompt_pieces)


def _print_summary(s: dict) -> None:
    print("text:")
    print(shown(s["text"], keep="\n\t"))
    print(
        f"steps={s['steps']} drafted={s['drafted']} accepted={s['accepted']} "
        f"acceptance={100 * s['acceptance_rate']:.1f}% tokens/step={s['mean_tokens_per_step']:.2f} "
        f"tokens/verifier-call={s['tokens_per_verifier_call']:.2f} tokens/s={s['tokens_per_s']:.1f} threads={s['threads']}"
    )
    if s.get("expected_tokens_per_step") is not None:
        print(
            f"theory: c={s['cost_ratio']:.2f} expected tokens/step={s['expected_tokens_per_step']:.2f} "
            f"expected speed-up={s['expected_speedup']:.2f}x best k={s['best_k']}"
        )
    if "speedup" in s:
        lossless = {True: "identical to plain decoding", False: "DIFFERS from plain decoding", None: "sampled (not compared)"}
        print(f"baseline: {s['baseline_tokens_per_s']:.1f} tokens/s; speed-up {s['speedup']:.2f}x; {lossless[s['lossless']]}")


def run_sweep(args) -> int:
    """Every block size (and drafter) on one prompt, against one baseline; models are loaded once."""
    from engine.session import build_drafter
    from engine.models import load_model

    sizes = parse_sweep(args.sweep)
    drafters = [d.strip() for d in args.drafter.split(",") if d.strip()]
    base_config = config_from_args(args, drafter=drafters[0], block_size=sizes[0])
    verifier = load_model(base_config.verifier, base_config.device, None if args.json else _progress, base_config.trust_remote_code)
    rows = []
    baseline = None
    for drafter_spec in drafters:
        drafter = build_drafter(base_config.replace(drafter=drafter_spec), verifier)
        for k in sizes:
            config: SpecConfig = config_from_args(args, drafter=drafter_spec, block_size=k)
            session = Session(config, verifier, drafter)
            session.reset(args.prompt)
            if baseline is None:
                baseline = session.baseline()
            session.run()
            comparison = session.compare(baseline)
            row = {"type": "sweep", "k": k, "drafter": drafter_spec, "acceptance_rate": session.stats.acceptance_rate,
                   "tokens_per_verifier_call": session.stats.tokens_per_verifier_call,
                   "tokens_per_s": session.stats.tokens_per_s, "baseline_tokens_per_s": baseline.tokens_per_s,
                   "speedup": comparison.speedup, "lossless": comparison.lossless if config.verify == "greedy" else None}
            rows.append(row)
            if args.json:
                print(json_line(row), flush=True)
    if not args.json:
        print(f"{'k':>3} {'drafter':<16} {'accept':>7} {'tok/call':>8} {'tok/s':>7} {'speed-up':>8} lossless")
        for r in rows:
            print(f"{r['k']:>3} {r['drafter']:<16} {100 * r['acceptance_rate']:>6.1f}% {r['tokens_per_verifier_call']:>8.2f} "
                  f"{r['tokens_per_s']:>7.1f} {r['speedup']:>7.2f}x {r['lossless']}")
        print(f"baseline (plain greedy decoding of the verifier): {baseline.tokens_per_s:.1f} tokens/s")
    return 0
