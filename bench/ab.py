"""Is this checkout as fast as another commit? Fixed chain configurations, timed in alternating processes.

    .venv/bin/python bench/ab.py REV [--rounds 3] [--max-new-tokens 64]

Makes a git worktree of REV (in a temporary folder), then alternates rounds: a process running this file's
`--measure` in REV's checkout and one in this checkout, in ABBA order, each timing the same configurations on the bench's
open-ended prompts (medians of 3 runs after a warm-up) and plain decoding in the same process as its baseline.
Prints per configuration the tokens/s of both and the ratio (medians over rounds), writes bench/results/ab-latest.json.
For refactors that must not cost speed (the one loop of chains and trees: docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
CONFIGS = {"ngram+head k=2": ("ngram+head", 2), "head k=1": ("head", 1), "ngram k=4": ("ngram", 4)}
PROMPTS = ("open-ended", "open-ended (essay)")


def measure(max_new: int, prompts: dict[str, str]) -> dict:
    """In whichever checkout this runs from: tokens/s per configuration and plain decoding, one process."""
    sys.path.insert(0, str(Path.cwd()))
    from engine import Session, SpecConfig, load_model

    ALL = prompts

    verifier = load_model("smollm2-135m")
    out = {}
    for name, (drafter, k) in CONFIGS.items():
        session = Session.from_loaded(SpecConfig(verifier=verifier.name, drafter=drafter, block_size=k,
                                                 max_new_tokens=max_new), verifier)
        rates = []
        for prompt in PROMPTS:
            session.reset(ALL[prompt])
            session.run()  # warm-up
            walls = []
            for _ in range(3):
                begin = time.perf_counter()
                session.reset(ALL[prompt])
                session.run()
                walls.append(time.perf_counter() - begin)
            rates.append(len(session.new_token_ids) / statistics.median(walls))
        out[name] = statistics.mean(rates)
    session.reset(ALL[PROMPTS[0]])
    out["plain"] = statistics.median(session.baseline(max_new).tokens_per_s for _ in range(3))
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("rev", nargs="?")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--measure", metavar="PROMPTS_JSON", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.max_new_tokens, json.loads(Path(args.measure).read_text()))))
        return 0
    sys.path.insert(0, str(HERE))
    from bench.machine import cpu_name
    from bench.prompts import PROMPTS as ALL
    if not args.rev:
        parser.error("name the commit to compare with, e.g. HEAD~3")
    python = sys.executable
    with tempfile.TemporaryDirectory() as folder:
        other = Path(folder) / "other"
        subprocess.run(["git", "-C", str(HERE), "worktree", "add", "--detach", str(other), args.rev], check=True,
                       capture_output=True)
        try:
            # The measuring code is this file's, in both checkouts: only the engine under it differs.
            script = Path(folder) / "measure.py"
            script.write_text(Path(__file__).read_text())
            prompts = Path(folder) / "prompts.json"  # this checkout's prompts: the other may predate bench/prompts.py
            prompts.write_text(json.dumps({name: ALL[name] for name in PROMPTS}))
            rounds = {"other": [], "this": []}
            for index in range(args.rounds):
                # ABBA: the second process of a pair ran slower here (plain decoding too, whose code is the same
                # in both), so each side goes first in every other round.
                pair = (("other", other), ("this", HERE))
                for side, root in pair if index % 2 == 0 else pair[::-1]:
                    run = subprocess.run([python, str(script), "--measure", str(prompts), "--max-new-tokens",
                                          str(args.max_new_tokens)], cwd=root, capture_output=True, text=True,
                                         check=True, env={**os.environ, "PYTHONPATH": str(root)})
                    rounds[side].append(json.loads(run.stdout.strip().splitlines()[-1]))
                    print(f"  {side}: " + ", ".join(f"{k} {v:.1f}" for k, v in rounds[side][-1].items()), flush=True)
        finally:
            subprocess.run(["git", "-C", str(HERE), "worktree", "remove", "--force", str(other)], capture_output=True)
    rows = []
    print(f"\n{'configuration':<18} {args.rev:>12} {'this':>8}  ratio (tokens/s, medians of {args.rounds} rounds)")
    for name in [*CONFIGS, "plain"]:
        theirs = statistics.median(r[name] for r in rounds["other"])
        mine = statistics.median(r[name] for r in rounds["this"])
        rows.append({"configuration": name, "other": theirs, "this": mine, "ratio": mine / theirs})
        print(f"{name:<18} {theirs:12.1f} {mine:8.1f}  {mine / theirs:.3f}")
    cpu = cpu_name()
    out = HERE / "bench" / "results" / "ab-latest.json"
    out.write_text(json.dumps({"rev": args.rev, "cpu": cpu, "rounds": rounds, "rows": rows}, indent=1))
    print(f"cpu: {cpu}; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
