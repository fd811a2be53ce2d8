"""`specdec-tui`: the app by default, `--headless` for the plain loop. Textual is imported only for the app."""

from __future__ import annotations

import os
import sys

from engine import ConfigError, EngineError
from engine import from_argv, shown

from .options import config_from_args, parser

HEADLESS_ONLY = ("json", "trace", "compare_baseline", "sweep", "explain")


def refuse_headless_only(args) -> None:
    """Options that only the headless run reads must not silently open the UI."""
    given = [f"--{name.replace('_', '-')}" for name in HEADLESS_ONLY if getattr(args, name)]
    if given:
        raise ConfigError(f"{', '.join(given)} only work{'s' if len(given) == 1 else ''} with --headless "
                          "(add --headless, or drop them to open the app)")


def prepare_streams() -> None:
    """Output never fails on a narrow encoding (PYTHONIOENCODING=ascii, a C locale): unencodable characters
    become '?' instead of a UnicodeEncodeError at the summary."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")


def prepare_terminal(environ=os.environ) -> None:
    """A dumb terminal gets no colour (Textual honours NO_COLOR, not TERM=dumb)."""
    if environ.get("TERM") == "dumb":
        environ.setdefault("NO_COLOR", "1")


def main(argv: list[str] | None = None) -> int:
    prepare_streams()
    args = parser().parse_args(argv)
    args.prompt, replaced = from_argv(args.prompt)
    if replaced:
        print("specdec-tui: warning: the prompt is not valid UTF-8; its undecodable bytes are shown as \ufffd",
              file=sys.stderr)
    try:
        if args.headless:
            from .headless import run_headless

            return run_headless(args)
        refuse_headless_only(args)
        if args.replay:
            from engine import read_trace

            read_trace(args.replay)  # a trace that cannot be read is refused here, before the UI starts
            config = None
        else:
            config = config_from_args(args)
    except EngineError as error:
        print(f"specdec-tui: {shown(error, keep='')}", file=sys.stderr)
        return 2
    prepare_terminal()
    from .app import SpecDecApp

    app = SpecDecApp(config=config, prompt=args.prompt, replay=args.replay)
    app.run()
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
