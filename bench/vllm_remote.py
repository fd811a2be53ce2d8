"""Speculative decoding with the verifier on a vLLM server (`--verifier URL`) against that server's own plain
decoding, on the bench prompts.

    .venv/bin/python -m bench.vllm_remote [--url http://127.0.0.1:PORT/v1] [--max-new-tokens 48]

Without --url it exports the embedded SmolLM2 and starts its own server (bench/vllm_server.py, ~3 min here).
Per prompt, in one round robin (medians of REPEATS):
- the server's own decoding: one completion request of N tokens at temperature 0 (its baseline: no client in the
  loop);
- plain decoding through the engine: one next-token request per token (what the app's speed check times);
- speculative decoding, `--drafter ngram` at k = 1, 3 and auto: tokens/s, acceptance, tokens per verify request,
  and the output checked against the server's greedy output.
Prints a table and writes bench/results/vllm-remote-latest.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.prompts import CHAT, PROMPTS  # noqa: E402
from bench.machine import cpu_name  # noqa: E402

REPEATS = 3
METHODS = {"ngram k=1": dict(block_size=1), "ngram k=3": dict(block_size=3),
           "ngram -k auto": dict(block_size_schedule="auto")}


def measure(url: str, max_new: int) -> list[dict]:
    from engine import Session, SpecConfig
    from engine.models.server_client import ServerClient

    client, rows = None, []
    for name, prompt in PROMPTS.items():
        chat = name in CHAT  # the instruct model's chat template, as the other benches use for these prompts
        sessions = {label: Session.from_config(SpecConfig(verifier=url, drafter="ngram", max_new_tokens=max_new,
                                                          chat=chat, **knobs))
                    for label, knobs in METHODS.items()}
        first = next(iter(sessions.values()))
        client = client or ServerClient(*first.config.verifier.split("#", 1), timeout_s=120)
        first.reset(prompt)
        ids = list(first.prompt_ids)
        reference = client.greedy(ids, max_new)
        for session in sessions.values():  # warm-up; the auto session times the server's passes here
            session.reset(prompt)
            session.run()
        walls: dict[str, list[float]] = {"server's own decoding": [], "plain through the engine": [],
                                         **{label: [] for label in sessions}}
        made: dict[str, int] = {}
        for _ in range(REPEATS):
            begin = time.perf_counter()
            own = client.greedy(ids, max_new)
            walls["server's own decoding"].append(time.perf_counter() - begin)
            made["server's own decoding"] = len(own)
            plain = first.baseline()
            walls["plain through the engine"].append(plain.wall_s)
            made["plain through the engine"] = plain.new_tokens
            for label, session in sessions.items():
                if session.planner is not None:
                    session.planner.forget_acceptance()
                begin = time.perf_counter()
                session.reset(prompt)
                session.run()
                walls[label].append(time.perf_counter() - begin)
                made[label] = len(session.new_token_ids)
        own_tps = made["server's own decoding"] / statistics.median(walls["server's own decoding"])
        for label, runs in walls.items():
            tps = made[label] / statistics.median(runs)
            row = {"prompt": name, "method": label, "tokens_per_s": tps, "vs_server": tps / own_tps, "runs_s": runs}
            if label in sessions:
                session = sessions[label]
                got = session.new_token_ids
                row.update(acceptance=session.stats.acceptance_rate,
                           tokens_per_call=session.stats.tokens_per_verifier_call,
                           verify_ms=1000 * session.stats.verify_s / max(1, session.stats.steps),
                           same_as_server=got[: len(reference)] == reference[: len(got)])
            rows.append(row)
            extra = (f" acc {row['acceptance']:.2f} tok/call {row['tokens_per_call']:.2f} verify {row['verify_ms']:.0f} ms"
                     f"{'' if row['same_as_server'] else '  DIFFERS'}") if label in sessions else ""
            print(f"{name[:24]:<24} {label:<26} {tps:6.1f} tok/s {row['vs_server']:5.2f}x{extra}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    from bench.vllm_server import DEFAULT_NAME, embedded_server, missing_environment

    parser = argparse.ArgumentParser()
    parser.add_argument("--url", help="a running server, http://HOST:PORT/v1 (default: start one for the embedded model)")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "vllm-remote-latest.json"))
    args = parser.parse_args(argv)
    if args.url:
        rows = measure(args.url, args.max_new_tokens)
    else:
        why = missing_environment()
        if why:
            print(why, file=sys.stderr)
            return 2
        with embedded_server() as server:
            rows = measure(f"{server.url}/v1#{DEFAULT_NAME}", args.max_new_tokens)
    Path(args.out).write_text(json.dumps({"cpu": cpu_name(), "max_new_tokens": args.max_new_tokens,
                                          "repeats": REPEATS, "rows": rows}, indent=1) + "\n")
    print(f"cpu: {cpu_name()}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
