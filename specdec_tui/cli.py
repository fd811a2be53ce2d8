"""`specdec-tui`: the app by default, `--headless` for the plain loop. Textual is imported only for the app."""

from __future__ import annotations

import sys

from engine import ConfigError, EngineError

from .options import config_from_args, parser

HEADLESS_ONLY = ("json", "trace", "compare_baseline", "sweep")


def refuse_headless_only(args) -> None:
    """Options that only the headless run reads must not silently open the UI."""
    given = [f"--{name.replace('_', '-')}" for name in HEADLESS_ONLY if getattr(args, name)]
    if given:
        raise ConfigError(f"{', '.join(given)} only work{'s' if len(given) == 1 else ''} with --headless "
                          "(add --headless, or drop them to open the app)")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
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
        print(f"specdec-tui: {error}", file=sys.stderr)
        return 2
    from .app import SpecDecApp

    app = SpecDecApp(config=config, prompt=args.prompt, replay=args.replay)
    app.run()
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
