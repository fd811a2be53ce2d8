"""Plain decoding with each layout of the one-row product, in one round-robin run: what the matmul plan's choice for
one row is worth on this CPU (engine/forward/matmul.py; docs/benchmarks.md#one-row-as-two-a-fair-plain-baseline).

    .venv/bin/python bench/one_row.py [--repeats 5] [--max-new-tokens 64]

Prints tokens/s per layout (medians, every output checked against the first layout's) and writes
bench/results/one-row-latest.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import cpu_name  # noqa: E402
from bench.prompts import PROMPTS  # noqa: E402
from engine import Session, SpecConfig, load_model  # noqa: E402
from engine.forward import matmul  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "one-row-latest.json"))
    args = parser.parse_args()
    verifier = load_model("smollm2-135m")
    session = Session.from_loaded(SpecConfig(verifier=verifier.name, drafter="ngram", max_new_tokens=args.max_new_tokens), verifier)
    session.reset(PROMPTS["open-ended"])
    planned = matmul.planned().get(1)
    walls = {layout: [] for layout in matmul.layouts_for(1)}
    outputs = {}
    for round_ in range(args.repeats + 1):  # round 0 warms up
        for layout in walls:  # round robin: a slow spell of the machine hits every layout alike
            matmul._LAYOUT[1] = layout
            start = time.perf_counter()
            outputs[layout] = session.baseline().token_ids
            if round_:
                walls[layout].append(time.perf_counter() - start)
    matmul._LAYOUT[1] = planned
    rows = [{"layout": layout, "tokens_per_s": args.max_new_tokens / statistics.median(w), "runs_s": w,
             "same_output": outputs[layout] == outputs[matmul.LINEAR]} for layout, w in walls.items()]
    print(f"cpu: {cpu_name()}; torch threads {torch.get_num_threads()}; plain decoding, {args.max_new_tokens} tokens; "
          f"the plan chose {planned!r}")
    for row in rows:
        print(f"  {row['layout']:<14} {row['tokens_per_s']:6.1f} tok/s  same output: {row['same_output']}")
    Path(args.out).write_text(json.dumps({"cpu": cpu_name(), "torch": torch.__version__, "planned": planned,
                                          "threads": torch.get_num_threads(), "rows": rows}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
