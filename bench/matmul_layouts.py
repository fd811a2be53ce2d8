"""The two layouts of a few-row product timed on SmolLM2-135M's matrix shapes (engine/forward/matmul.py picks per machine).

    .venv/bin/python bench/matmul_layouts.py [--repeats 7]

For each shape and row count (1 = a drafting step, 2 = a catch-up, 5 = a k = 4 verify pass, 32 = a prompt) it times
`F.linear(x, W)` (what transformers calls) and `torch.mm(W, x.T)` over enough distinct matrices that they come from
memory, as in a real forward pass, not from cache. Rounds alternate the two, medians are reported. Prints a table
and writes bench/results/matmul_layouts.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

# (rows of W, columns of W, how many such matrices one forward pass of SmolLM2-135M reads)
SHAPES = {"q/o proj": (576, 576, 60), "k/v proj": (192, 576, 60), "gate/up proj": (1536, 576, 60),
          "down proj": (576, 1536, 30), "lm head": (49152, 576, 1)}
ROWS = (1, 2, 5, 32)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "matmul_layouts.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = []
    print(f"{'matrices':<14} {'rows':>4} {'linear ms':>10} {'W @ x.T ms':>11} {'ratio':>6}")
    for name, (n_out, n_in, count) in SHAPES.items():
        weights = [torch.randn(n_out, n_in) for _ in range(count)]
        for m in ROWS:
            x = torch.randn(m, n_in)
            ways = {"linear": lambda: [F.linear(x, w) for w in weights],
                    "mm_w_xt": lambda: [torch.mm(w, x.t()).t() for w in weights]}
            times = {way: [] for way in ways}
            with torch.inference_mode():
                for fn in ways.values():
                    fn()  # warm-up
                for _ in range(args.repeats):
                    for way, fn in ways.items():
                        start = time.perf_counter()
                        fn()
                        times[way].append(1000 * (time.perf_counter() - start))
            linear, mm = (statistics.median(times[w]) for w in ways)
            rows.append({"matrices": name, "shape": [n_out, n_in], "count": count, "rows": m,
                         "linear_ms": linear, "mm_w_xt_ms": mm, "speedup": linear / mm})
            print(f"{name:<14} {m:>4} {linear:>10.2f} {mm:>11.2f} {linear / mm:>5.2f}x", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
