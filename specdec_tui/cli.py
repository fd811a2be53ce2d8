"""`specdec-tui`: the app by default, `--headless` for the plain loop. Textual is imported only for the app."""

from __future__ import annotations

import sys

from engine.errors import EngineError

from .options import config_from_args, parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.headless:
            from .headless import run_headless

            return run_headless(args)
        if args.replay:
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
