"""Benchmark: the engine against plain decoding and transformers' assisted generation, in one run.

    .venv/bin/python bench/run.py [--quick] [--k 4] [--max-new-tokens 64] [--repeats 3] [--early-exit 20]

Prints a table and writes bench/results/latest.json. Figures are medians over repeats after a warm-up; speed-ups
are ratios against plain greedy decoding (transformers `generate`) measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import psutil
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import Session, SpecConfig  # noqa: E402
from engine.models import load_model  # noqa: E402
from engine.session import build_drafter  # noqa: E402

CODE = (
    "def compute_total_price(items, tax_rate):\n"
    "    subtotal = sum(item.price * item.quantity for item in items)\n"
    "    tax = subtotal * tax_rate\n"
    "    return subtotal + tax\n"
)
PASSAGE = (
    "The Amazon rainforest covers much of the Amazon basin of South America. The basin covers seven million square "
    "kilometres, of which five and a half million square kilometres are covered by the rainforest."
)


def chat(user: str) -> str:
    """SmolLM2-Instruct's chat format: the input-grounded tasks are requests the model answers."""
    return f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


PROMPTS = {
    "open-ended": "In a distant future,",
    "code edit (grounded)": chat(f"Rename the function compute_total_price to total_with_tax in this code and show the whole code:\n{CODE}"),
    "restate (grounded)": chat(f"Repeat this passage word for word: {PASSAGE}"),
}


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def timed(fn, repeats: int):
    fn()  # warm-up
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        runs.append((time.perf_counter() - start, out))
    return runs


def hf_generate(model, ids, max_new, **kwargs):
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=max_new, do_sample=False, **kwargs)  # stops at EOS, as the engine does
    return out[0, ids.shape[1]:].tolist()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--early-exit", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="1 repeat, 24 tokens, first two prompts")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "latest.json"))
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.max_new_tokens = 1, 24
    prompts = dict(list(PROMPTS.items())[:2]) if args.quick else PROMPTS
    k, max_new = args.k, args.max_new_tokens

    start = time.perf_counter()
    verifier = load_model("smollm2-135m")
    load_s = time.perf_counter() - start
    model, tok = verifier.model, verifier.tokenizer
    rss_loaded = rss_mb()
    rows = []

    for prompt_name, prompt in prompts.items():
        ids = torch.tensor([tok(prompt).input_ids])
        reference: list[int] | None = None

        def record(method, runs, tokens, extra=None):
            nonlocal reference
            walls = [wall for wall, _ in runs]
            median = statistics.median(walls)
            lossless = None if reference is None else tokens[: len(reference)] == reference[: len(tokens)]
            row = {"prompt": prompt_name, "method": method, "k": k, "new_tokens": len(tokens),
                   "median_s": median, "tokens_per_s": len(tokens) / median, "runs_s": walls,
                   "lossless": lossless, "rss_mb": rss_mb(), **(extra or {})}
            rows.append(row)
            print(f"  {prompt_name:<22} {method:<34} {row['tokens_per_s']:6.1f} tok/s  lossless={lossless}", flush=True)
            return row

        # Baselines: transformers' plain greedy generate (the reference output), and the engine's own baseline.
        runs = timed(lambda: hf_generate(model, ids, max_new), args.repeats)
        reference = runs[-1][1]
        record("plain greedy (transformers)", runs, reference)
        base_session = _session(verifier, "same", k, max_new)
        base_session.reset(prompt)
        runs = timed(lambda: list(base_session.baseline(max_new).token_ids[ids.shape[1]:]), args.repeats)
        record("plain greedy (engine baseline)", runs, runs[-1][1])

        # transformers' assisted generation with the same pair and k, and its prompt lookup.
        runs = timed(lambda: hf_generate(model, ids, max_new, assistant_model=model, num_assistant_tokens=k,
                                          num_assistant_tokens_schedule="constant", assistant_confidence_threshold=0.0), args.repeats)
        record("assisted generation (same, transformers)", runs, runs[-1][1])
        runs = timed(lambda: hf_generate(model, ids, max_new, prompt_lookup_num_tokens=k), args.repeats)
        record("prompt lookup (transformers)", runs, runs[-1][1])
        runs = timed(lambda: hf_generate(model, ids, max_new, assistant_early_exit=args.early_exit, num_assistant_tokens=k,
                                          num_assistant_tokens_schedule="constant"), args.repeats)
        record(f"early exit {args.early_exit} (transformers)", runs, runs[-1][1])

        for drafter in ("same", "ngram", f"early-exit:{args.early_exit}"):
            session = _session(verifier, drafter, k, max_new)

            def run_engine():
                session.reset(prompt)
                session.run()
                return list(session.new_token_ids)

            runs = timed(run_engine, args.repeats)
            stats = session.stats  # of the last repeat
            other = stats.wall_s - stats.draft_s - stats.verify_s
            record(f"engine {drafter}", runs, runs[-1][1], {
                "acceptance_rate": stats.acceptance_rate,
                "tokens_per_verifier_call": stats.tokens_per_verifier_call,
                "draft_s_per_step": stats.draft_s / stats.steps,
                "verify_s_per_step": stats.verify_s / stats.steps,
                "other_s_per_step": other / stats.steps,
                "overhead_share": other / stats.wall_s,
            })

    # Each engine drafter against transformers' own way of doing the same thing.
    counterpart = {"engine same": "assisted generation (same, transformers)", "engine ngram": "prompt lookup (transformers)",
                   f"engine early-exit:{args.early_exit}": f"early exit {args.early_exit} (transformers)"}
    for row in rows:  # ratios against plain greedy (transformers) on the same prompt, same run
        same_prompt = {r["method"]: r for r in rows if r["prompt"] == row["prompt"]}
        row["speedup_vs_plain"] = row["tokens_per_s"] / same_prompt["plain greedy (transformers)"]["tokens_per_s"]
        if row["method"] in counterpart:
            row["ratio_vs_transformers_counterpart"] = row["tokens_per_s"] / same_prompt[counterpart[row["method"]]]["tokens_per_s"]

    print()
    print(f"{'prompt':<22} {'method':<42} {'tok/s':>6} {'vs plain':>8} {'vs HF':>6} {'accept':>7} {'tok/call':>8} "
          f"{'draft ms':>8} {'verify ms':>9} {'other %':>7} lossless")
    for r in rows:
        acc = f"{100 * r['acceptance_rate']:6.1f}%" if "acceptance_rate" in r else "      -"
        tpc = f"{r['tokens_per_verifier_call']:8.2f}" if "tokens_per_verifier_call" in r else "       -"
        split = (f"{1000 * r['draft_s_per_step']:8.1f} {1000 * r['verify_s_per_step']:9.1f} {100 * r['overhead_share']:6.1f}%"
                 if "draft_s_per_step" in r else f"{'-':>8} {'-':>9} {'-':>7}")
        vs_hf = f"{r['ratio_vs_transformers_counterpart']:5.2f}x" if "ratio_vs_transformers_counterpart" in r else f"{'-':>6}"
        print(f"{r['prompt']:<22} {r['method']:<42} {r['tokens_per_s']:6.1f} {r['speedup_vs_plain']:7.2f}x {vs_hf} {acc} {tpc} {split} {r['lossless']}")
    result = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "threads": torch.get_num_threads()},
        "settings": {"k": k, "max_new_tokens": max_new, "repeats": args.repeats, "early_exit": args.early_exit},
        "load_s": load_s, "rss_after_load_mb": rss_loaded, "peak_rss_mb": psutil.Process().memory_info().rss / 2**20,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"\nload {load_s:.1f} s, RSS after load {rss_loaded:.0f} MB; wrote {args.out}")
    return 0


def _session(verifier, drafter: str, k: int, max_new: int) -> Session:
    config = SpecConfig(verifier=verifier.name, drafter=drafter, block_size=k, draft_mode="greedy",
                        max_new_tokens=max_new).validated()
    return Session(config, verifier, build_drafter(config, verifier))


if __name__ == "__main__":
    sys.exit(main())
