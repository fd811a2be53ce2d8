"""The layouts of a few-row product timed on SmolLM2-135M's matrix shapes (engine/forward/matmul.py picks per machine).

    .venv/bin/python bench/matmul_layouts.py [--repeats 7]

For each shape and row count (1 = a plain step or a drafting pass, 2 = a k = 1 verify pass, 5 = a k = 4 verify
pass, 32 = a prompt) it times `F.linear(x, W)` (what transformers calls) and `torch.mm(W, x.T)`, and for one row
also that row computed as two (`torch.mm(W, [x; x].T)`, the second dropped), over enough distinct matrices that they
come from memory, as in a real forward pass, not from cache. Rounds alternate the layouts, medians are reported.
Prints a table and writes bench/results/matmul_layouts.json.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import cpu_name  # noqa: E402

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
    print(f"{'matrices':<14} {'rows':>4} {'linear ms':>10} {'W @ x.T ms':>11} {'ratio':>6} {'1 row as 2 ms':>14}")
    for name, (n_out, n_in, count) in SHAPES.items():
        weights = [torch.randn(n_out, n_in) for _ in range(count)]
        for m in ROWS:
            x = torch.randn(m, n_in)
            ways = {"linear": lambda: [F.linear(x, w) for w in weights],
                    "mm_w_xt": lambda: [torch.mm(w, x.t()).t() for w in weights]}
            if m == 1:
                ways["one_row_as_two"] = lambda: [torch.mm(w, torch.cat((x, x)).t())[:, :1].t() for w in weights]
            times = {way: [] for way in ways}
            with torch.inference_mode():
                for fn in ways.values():
                    fn()  # warm-up
                for _ in range(args.repeats):
                    for way, fn in ways.items():
                        start = time.perf_counter()
                        fn()
                        times[way].append(1000 * (time.perf_counter() - start))
            linear, mm = statistics.median(times["linear"]), statistics.median(times["mm_w_xt"])
            padded = statistics.median(times["one_row_as_two"]) if m == 1 else None
            rows.append({"matrices": name, "shape": [n_out, n_in], "count": count, "rows": m,
                         "linear_ms": linear, "mm_w_xt_ms": mm, "speedup": linear / mm, "one_row_as_two_ms": padded})
            as_two = f"{padded:>14.2f}" if padded is not None else ""
            print(f"{name:<14} {m:>4} {linear:>10.2f} {mm:>11.2f} {linear / mm:>5.2f}x {as_two}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"cpu": cpu_name(), "torch": torch.__version__,
                                          "threads": torch.get_num_threads(), "rows": rows}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
