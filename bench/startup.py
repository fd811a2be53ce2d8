"""Start-up time of the app, read off the screen: launch -> first screen, and launch -> "models ready".

    .venv/bin/python bench/startup.py [--repeats 5] [--cold]

Runs `specdec-tui` in a detached tmux session at 120x40 and polls the pane every 20 ms, as a user watching it
would. Warm start: the dequantized weights are already cached (run once before). --cold points the cache at an
empty folder first, so the GGUF is dequantized again. Prints medians and writes bench/results/startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / ".venv" / "bin" / "specdec-tui"
FIRST_SCREEN = "Draft block"  # a panel title: the layout has been drawn
READY = "models ready"


def pane(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def one_start(env: dict, timeout: float) -> dict:
    session = f"startup-{os.getpid()}"
    subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    start = time.perf_counter()
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", str(APP)], env=env, check=True)
    first = ready = None
    try:
        while time.perf_counter() - start < timeout:
            screen = pane(session)
            now = time.perf_counter() - start
            if first is None and FIRST_SCREEN in screen:
                first = now
            if READY in screen:
                ready = now
                break
            if "cannot start" in screen:
                raise RuntimeError(screen)
            time.sleep(0.02)
    finally:
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], capture_output=True)
        time.sleep(0.5)
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    return {"first_screen_s": first, "models_ready_s": ready}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cold", action="store_true", help="dequantize the GGUF again (an empty cache folder)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "startup.json"))
    args = parser.parse_args()
    if not APP.exists() or shutil.which("tmux") is None:
        print("needs tmux and the app installed (make setup)", file=sys.stderr)
        return 2
    env = dict(os.environ)
    runs = []
    for _ in range(args.repeats):
        scratch = None
        if args.cold:
            scratch = tempfile.mkdtemp(prefix="specdec-cold-")
            env["SPECDEC_CACHE_DIR"] = scratch
        try:
            runs.append(one_start(env, timeout=180 if args.cold else 60))
        finally:
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
        print(f"  first screen {runs[-1]['first_screen_s']:.2f} s, models ready {runs[-1]['models_ready_s']:.2f} s", flush=True)
    summary = {key: statistics.median(r[key] for r in runs) for key in ("first_screen_s", "models_ready_s")}
    kind = "cold (GGUF dequantized)" if args.cold else "warm (cached weights)"
    print(f"{kind}: median first screen {summary['first_screen_s']:.2f} s, models ready {summary['models_ready_s']:.2f} s "
          f"over {len(runs)} starts")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"kind": kind, "runs": runs, "median": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
