"""Re-make docs/screen.svg, the README's picture: the app on the embedded model, after a few steps.

    .venv/bin/python docs/make_screenshot.py            # or: make docs (also re-writes the key table)
    .venv/bin/python docs/make_screenshot.py --steps 8 --size 120x40 --out docs/screen.svg

It starts the app headless (Textual's `run_test`, no terminal needed) with the same defaults as `make run`
(the embedded SmolLM2-135M, the default drafter, the default prompt), waits for the models, presses `n` a few
times (waiting for each step's worker to finish), then presses `x`: the picture is the app's own SVG export,
the one a user gets. Decoding is greedy and seeded, so the text is the same on every machine; the timings on
the picture are this machine's. Needs the embedded model (installed by `make run` / `make test`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout this script lives in, whatever is installed
os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")  # no spinner frame or fade caught half-way
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the embedded model needs no network


def busy(app) -> bool:
    """Model work runs or waits (the app's scheduler; an app without one counts as idle once its workers are)."""
    scheduler = getattr(app, "scheduler", None)
    return bool(scheduler is not None and (getattr(scheduler, "busy", False) or getattr(scheduler, "queue", ())))


def ready(app) -> bool:
    scheduler = getattr(app, "scheduler", None)
    return bool(getattr(scheduler, "ready", True))


async def settle(pilot, timeout: float) -> None:
    """Wait until no model work runs or waits (`pilot.press` does not wait for thread workers)."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not busy(app):
            break
        await asyncio.sleep(0.05)
    else:
        raise SystemExit(f"make_screenshot: the app was still busy after {timeout:.0f} s")
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


async def close_overlays(pilot) -> None:
    """Back to the main screen if something opened over it (a help or welcome screen): Escape, a few times."""
    for _ in range(5):
        if len(pilot.app.screen_stack) <= 1:
            return
        await pilot.press("escape")
        await pilot.pause()


async def picture(steps: int, size: tuple[int, int], out: Path, argv: list[str]) -> Path:
    from specdec_tui.app import SpecDecApp
    from specdec_tui.options import config_from_args, parser

    args = parser().parse_args(argv)
    app = SpecDecApp(config=config_from_args(args), prompt=args.prompt)
    folder = Path(tempfile.mkdtemp(prefix="specdec-screenshot-"))
    here = Path.cwd()
    try:
        async with app.run_test(size=size) as pilot:
            deadline = time.monotonic() + 300  # a first start dequantizes the model: ~30 s on 2 cores
            while not ready(app):
                if time.monotonic() > deadline:
                    raise SystemExit("make_screenshot: the models did not load in 300 s")
                await settle(pilot, 300)
                await asyncio.sleep(0.1)
            await close_overlays(pilot)
            for _ in range(steps):
                await pilot.press("n")
                await settle(pilot, 120)
            await close_overlays(pilot)
            os.chdir(folder)  # `x` saves into the current folder
            try:
                await pilot.press("x")
                await pilot.pause()
            finally:
                os.chdir(here)
            if not list(folder.glob("*.svg")):  # `x` moved or renamed: the same export, called directly
                print("make_screenshot: `x` saved no picture; using App.save_screenshot", file=sys.stderr)
                app.save_screenshot(filename="screen.svg", path=str(folder))
        made = sorted(folder.glob("*.svg"))
        if len(made) != 1:
            raise SystemExit(f"make_screenshot: expected one picture from `x`, found {[p.name for p in made]}")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(made[0]), out)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Other arguments go to the app, as on its command line (e.g. --drafter ngram).")
    p.add_argument("--steps", type=int, default=8, help="how many times to press n before the picture (default 8)")
    p.add_argument("--size", default="120x40", help="terminal size, WIDTHxHEIGHT (default 120x40)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "screen.svg", help="where to write the SVG")
    ours, app_argv = p.parse_known_args()
    width, height = (int(n) for n in ours.size.lower().split("x"))
    out = asyncio.run(picture(ours.steps, (width, height), ours.out.resolve(), app_argv))
    print(f"wrote {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
