"""Soak: the app auto-plays N steps with the default models, resetting at each end of text; RSS is sampled.

Resetting keeps the context (and so the KV caches) bounded, so RSS growth measures leaks, not a longer context.

    .venv/bin/python bench/soak.py [--steps 500] [--verifier smollm2-135m] [--drafter same]

Prints RSS every 50 steps and writes bench/results/soak.json. Pass: no exception, RSS growth after step 50 < 50 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import SpecConfig  # noqa: E402
from specdec_tui.app import SpecDecApp  # noqa: E402


async def soak(args) -> dict:
    config = SpecConfig(verifier=args.verifier, drafter=args.drafter)
    app = SpecDecApp(config=config)
    process = psutil.Process()
    samples = []
    start = time.perf_counter()
    async with app.run_test(size=(120, 40)) as pilot:
        while not app.ready:
            await pilot.pause(0.2)
        load_s = time.perf_counter() - start
        await pilot.press("t", "t", "space")  # auto-play with no pause between steps
        next_mark, done_before, resets = 0, 0, 0
        while True:
            await pilot.pause(0.5)
            steps = done_before + (app.snap.stats.steps if app.snap else 0)
            if steps >= next_mark:
                rss = process.memory_info().rss / 2**20
                samples.append({"steps": steps, "rss_mb": rss, "t_s": time.perf_counter() - start})
                print(f"step {steps:4d}  rss {rss:7.1f} MB  resets {resets}", flush=True)
                next_mark += 50
            if steps >= args.steps:
                break
            message = app.query_one("#status").message.plain
            if message.startswith("✗"):
                raise RuntimeError(message)
            if app.snap and app.snap.finished and not app.busy:
                done_before += app.snap.stats.steps
                resets += 1
                await pilot.press("r")
                while app.busy or app.snap.stats.steps:
                    await pilot.pause(0.1)
                await pilot.press("space")
        await pilot.press("space")
    after_50 = [s["rss_mb"] for s in samples if s["steps"] >= 50]
    return {
        "steps": samples[-1]["steps"], "load_s": load_s, "samples": samples,
        "peak_rss_mb": max(s["rss_mb"] for s in samples),
        "growth_after_50_mb": (after_50[-1] - after_50[0]) if len(after_50) > 1 else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--verifier", default="smollm2-135m")
    parser.add_argument("--drafter", default="same")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "soak.json"))
    args = parser.parse_args()
    result = asyncio.run(soak(args))
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"steps {result['steps']}, peak RSS {result['peak_rss_mb']:.0f} MB, "
          f"growth after step 50: {result['growth_after_50_mb']:.1f} MB; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
