"""Benchmark: torch threads (1 vs 2) for drafting and verification, alone and beside a competing decoding process.

    .venv/bin/python bench/threads.py [--threads 1,2] [--tokens 64] [--repeats 5] [--k 4] [--drafter same]

For each thread count it decodes the same prompt with the engine (greedy, k drafts per step) `--repeats` times
alone, then again while a second process decodes plainly with the same thread count (the situation of two
decoding processes on one small machine). It reports medians of drafting ms per drafted token, verification ms
per step and tokens/s, and the competitor's own tokens/s meanwhile (what the two processes get together).
Prints a table and writes bench/results/threads-latest.json. Run it on a quiet machine: it measures contention
on purpose, so any other load spoils it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROMPT = "In a distant future,"


def session_for(args, threads: int):
    from engine import Session, SpecConfig

    config = SpecConfig(verifier=args.verifier, drafter=args.drafter, block_size=args.k, draft_mode="greedy",
                        max_new_tokens=args.tokens, threads=threads)
    return Session.from_config(config)


def measure(session, repeats: int) -> dict:
    """Medians over `repeats` runs of the whole text, after one warm-up run."""
    runs = []
    for index in range(repeats + 1):
        session.reset(PROMPT)
        session.run()
        s = session.stats
        if index:  # the first run warms caches and allocators
            runs.append({"tokens_per_s": s.tokens_per_s, "draft_ms_per_token": s.draft_ms_per_token or 0.0,
                         "verify_ms_per_step": s.verify_ms_per_step or 0.0, "steps": s.steps, "new_tokens": s.new_tokens})
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]} | {"runs": runs}


def start_competitor(args, threads: int) -> subprocess.Popen:
    command = [sys.executable, __file__, "--compete", "--threads", str(threads), "--verifier", args.verifier,
               "--tokens", str(args.tokens)]
    competitor = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    if competitor.stdout.readline().strip() != "ready":  # loaded and decoding before we start timing
        raise SystemExit("the competing process did not start")
    return competitor


def stop_competitor(competitor: subprocess.Popen) -> float | None:
    competitor.terminate()
    out, _ = competitor.communicate(timeout=60)
    rates = [float(line) for line in out.split() if line.replace(".", "", 1).isdigit()]
    return statistics.median(rates) if rates else None


def compete(args) -> int:
    """The competitor: plain greedy decoding with the verifier, over and over, printing tokens/s per run."""
    import signal

    from engine import Session, SpecConfig

    stop = False

    def on_term(signum, frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    config = SpecConfig(verifier=args.verifier, drafter="ngram", max_new_tokens=args.tokens, threads=int(args.threads))
    session = Session.from_config(config)
    session.reset(PROMPT)
    session.baseline(args.tokens)  # warm-up
    print("ready", flush=True)
    while not stop:
        result = session.baseline(args.tokens)
        print(f"{result.tokens_per_s:.3f}", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts to compare")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--drafter", default="same")
    parser.add_argument("--verifier", default="smollm2-135m")
    parser.add_argument("--compete", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "threads-latest.json"))
    args = parser.parse_args()
    if args.compete:
        return compete(args)

    counts = [int(n) for n in args.threads.split(",")]
    load_at_start = os.getloadavg()  # over ~1 means something else is running: the figures will say little
    rows = []
    for threads in counts:
        session = session_for(args, threads)
        for situation in ("alone", "beside a competing process"):
            competitor = start_competitor(args, threads) if situation != "alone" else None
            try:
                figures = measure(session, args.repeats)
            finally:
                other = stop_competitor(competitor) if competitor else None
            row = {"threads": threads, "situation": situation, **figures, "competitor_tokens_per_s": other}
            rows.append(row)
            print(f"  threads={threads} {situation:<27} {row['tokens_per_s']:6.1f} tok/s", flush=True)
        del session

    print()
    print(f"{'threads':>7} {'situation':<27} {'tok/s':>6} {'draft ms/tok':>12} {'verify ms/step':>14} {'competitor tok/s':>16}")
    for r in rows:
        other = f"{r['competitor_tokens_per_s']:16.1f}" if r["competitor_tokens_per_s"] is not None else f"{'-':>16}"
        print(f"{r['threads']:>7} {r['situation']:<27} {r['tokens_per_s']:6.1f} {r['draft_ms_per_token']:12.1f} "
              f"{r['verify_ms_per_step']:14.1f} {other}")
    result = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_avg_at_start": load_at_start},
        "settings": {"verifier": args.verifier, "drafter": args.drafter, "k": args.k, "tokens": args.tokens,
                     "repeats": args.repeats, "prompt": PROMPT, "finished": time.strftime("%Y-%m-%d %H:%M:%S")},
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
