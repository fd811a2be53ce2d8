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

from bench.prompts import CHAT, PROMPTS  # noqa: E402
from engine import Session, SpecConfig, load_model  # noqa: E402



def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


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
    parser.add_argument("--prompt", action="append", help="only prompts whose name contains this (repeatable)")
    parser.add_argument("--method", action="append", help="only methods whose name contains this (repeatable; the "
                        "plain greedy baselines always run)")
    parser.add_argument("--head-ks", default="1,2", help="block sizes for the draft head rows (head and ngram+head)")
    parser.add_argument("--trees", nargs="*", metavar="SHAPE",
                        help="also tree drafts vs chains of the same depth, and verify cost of N nodes (bench/trees.py); "
                             "no shapes: 3,2,1,1 2,2,2,2 dynamic:12")
    parser.add_argument("--draft-confidence", type=float, default=0.0, metavar="Q",
                        help="also every head row with --draft-confidence Q (the chain stops after a draft below Q)")
    parser.add_argument("--also-head", action="append", default=[], metavar="PATH",
                        help="also rows for this trained head (head:PATH) at --head-ks, e.g. the previous version")
    parser.add_argument("--bf16", action="store_true",
                        help="also the head rows and the engine's plain baseline with --forward bf16 (engine/forward/fast_llama.py)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "latest.json"))
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.max_new_tokens = 1, 24
    prompts = dict(list(PROMPTS.items())[:2]) if args.quick else PROMPTS
    if args.prompt:
        prompts = {name: text for name, text in PROMPTS.items() if any(part in name for part in args.prompt)}
    k, max_new = args.k, args.max_new_tokens

    start = time.perf_counter()
    # Through transformers: its `generate` runs the baselines; the engine decodes the same weights its own way.
    verifier = load_model("smollm2-135m", lean=False)
    load_s = time.perf_counter() - start
    model = verifier.model
    rss_loaded = rss_mb()
    rows = []

    for prompt_name, prompt in prompts.items():
        chat = prompt_name in CHAT
        base_session = _session(verifier, "same", k, max_new, chat=chat)
        base_session.reset(prompt)
        ids = torch.tensor([base_session.prompt_ids])  # the engine's encoding, so every method sees the same ids
        methods = {  # name -> (function returning the new token ids, session whose stats it leaves, or None)
            "plain greedy (transformers)": (lambda: hf_generate(model, ids, max_new), None),
        }
        bf16_methods = set()  # verified in bf16: compared with plain bf16 decoding (lossless, r)
        methods["plain greedy (engine baseline)"] = (
            lambda: list(base_session.baseline(max_new).token_ids[ids.shape[1]:]), None)
        if args.bf16:  # the same plain decoding at the precision the bf16 rows verify in
            bf16_session = _session(verifier, "same", k, max_new, "bf16", chat=chat)
            bf16_session.reset(prompt)
            methods["plain greedy (engine baseline, bf16)"] = (
                lambda: list(bf16_session.baseline(max_new).token_ids[ids.shape[1]:]), None)
            bf16_methods.add("plain greedy (engine baseline, bf16)")
        # transformers' assisted generation with the same pair and k, its prompt lookup and its early exit.
        methods["assisted generation (same, transformers)"] = (
            lambda: hf_generate(model, ids, max_new, assistant_model=model, num_assistant_tokens=k,
                                num_assistant_tokens_schedule="constant", assistant_confidence_threshold=0.0), None)
        methods["prompt lookup (transformers)"] = (lambda: hf_generate(model, ids, max_new, prompt_lookup_num_tokens=k), None)
        methods[f"early exit {args.early_exit} (transformers)"] = (
            lambda: hf_generate(model, ids, max_new, assistant_early_exit=args.early_exit, num_assistant_tokens=k,
                                num_assistant_tokens_schedule="constant"), None)
        engines = [("same", "auto", k), ("same", "transformers", k), ("ngram", "auto", k),
                   (f"early-exit:{args.early_exit}", "auto", k)]
        head_ks = list(map(int, args.head_ks.split(",")))
        engines += [(drafter, "auto", head_k) for drafter in ("head", "ngram+head") for head_k in head_ks]
        engines += [(f"head:{path}", "auto", head_k) for path in args.also_head for head_k in head_ks]
        if args.bf16:
            engines += [(drafter, "bf16", head_k) for drafter in ("head", "ngram+head") for head_k in head_ks]
        for drafter, forward, block in engines:
            # --draft-confidence: each head row again with the chain stopping after a draft the head doubts.
            gates = [0.0] + ([args.draft_confidence] if args.draft_confidence and "head" in drafter else [])
            for gate in gates:
                session = _session(verifier, drafter, block, max_new, forward, chat=chat, draft_confidence=gate)
                suffix = {"auto": "", "transformers": ", transformers forward", "bf16": ", bf16"}[forward]
                suffix += "" if block == k else f", k={block}"
                suffix += f", confidence {gate}" if gate else ""
                methods[f"engine {drafter}{suffix}"] = (_engine_run(session, prompt), session)
                if forward == "bf16":
                    bf16_methods.add(f"engine {drafter}{suffix}")
        if args.method:
            methods = {name: m for name, m in methods.items()
                       if name.startswith("plain greedy") or any(part in name for part in args.method)}

        # Round robin: every repeat runs each method once, so a slow spell of the machine hits all of them alike.
        for fn, _ in methods.values():
            fn()  # warm-up
        walls = {name: [] for name in methods}
        outputs, splits = {}, {name: [] for name in methods}
        for _ in range(args.repeats):
            for name, (fn, session) in methods.items():
                begin = time.perf_counter()
                outputs[name] = fn()
                walls[name].append(time.perf_counter() - begin)
                if session is not None:
                    splits[name].append(_split(session.stats))
        for name, (fn, session) in methods.items():
            tokens = outputs[name]
            # Lossless means: the same tokens as plain greedy decoding at the row's own precision.
            bf16 = name in bf16_methods
            reference = outputs["plain greedy (engine baseline, bf16)" if bf16 else "plain greedy (transformers)"]
            median = statistics.median(walls[name])
            row = {"prompt": prompt_name, "method": name, "forward": "bf16" if bf16 else "fp32",
                   "k": session.config.block_size if session is not None else k, "new_tokens": len(tokens),
                   "median_s": median, "tokens_per_s": len(tokens) / median, "runs_s": walls[name],
                   "lossless": tokens[: len(reference)] == reference[: len(tokens)], "rss_mb": rss_mb()}
            if session is not None:
                stats = session.stats  # counts are the same every repeat (greedy); times are medians
                row.update({"acceptance_rate": stats.acceptance_rate,
                            "tokens_per_verifier_call": stats.tokens_per_verifier_call,
                            "drafted_per_step": stats.drafted / stats.steps,
                            "per_position_acceptance": list(stats.per_position_acceptance),
                            "steps_drafted_by_lookup": sum(1 for step in session.steps if step.drafted_by == "lookup"),
                            **{key: statistics.median(s[key] for s in splits[name]) for key in splits[name][0]}})
            if name.startswith("plain greedy (engine baseline"):  # one plain decoding step of the lean forward
                row["plain_step_s"] = median / len(tokens)
            rows.append(row)
            print(f"  {prompt_name:<22} {name:<44} {row['tokens_per_s']:6.1f} tok/s  lossless={row['lossless']}", flush=True)

    # Each engine drafter against transformers' own way of doing the same thing.
    counterpart = {"engine same": "assisted generation (same, transformers)",
                   "engine same, transformers forward": "assisted generation (same, transformers)", "engine ngram": "prompt lookup (transformers)",
                   f"engine early-exit:{args.early_exit}": f"early exit {args.early_exit} (transformers)"}
    for row in rows:  # ratios against plain greedy (transformers) on the same prompt, same run
        same_prompt = {r["method"]: r for r in rows if r["prompt"] == row["prompt"]}
        row["speedup_vs_plain"] = row["tokens_per_s"] / same_prompt["plain greedy (transformers)"]["tokens_per_s"]
        if row["method"] in counterpart and counterpart[row["method"]] in same_prompt:
            row["ratio_vs_transformers_counterpart"] = row["tokens_per_s"] / same_prompt[counterpart[row["method"]]]["tokens_per_s"]
        # r against plain decoding at the row's own precision; also every row against the fastest plain here.
        plain = same_prompt["plain greedy (engine baseline, bf16)" if row["forward"] == "bf16" else "plain greedy (engine baseline)"]
        row["speedup_vs_engine_plain"] = row["tokens_per_s"] / same_prompt["plain greedy (engine baseline)"]["tokens_per_s"]
        if "verify_s_per_step" in row and row.get("drafted_per_step"):
            # r: a verify pass in plain decoding steps; c: a drafted token in verify passes (the app's c).
            row["r_verify_over_plain_step"] = row["verify_s_per_step"] / plain["plain_step_s"]
            row["c_draft_token_over_verify"] = row["draft_s_per_step"] / row["drafted_per_step"] / row["verify_s_per_step"]

    print()
    print(f"{'prompt':<22} {'method':<44} {'tok/s':>6} {'vs plain':>8} {'vs eng':>6} {'vs HF':>6} {'accept':>7} {'tok/call':>8} "
          f"{'draft ms':>8} {'verify ms':>9} {'other %':>7} {'r':>5} {'c':>6} lossless")
    for r in rows:
        acc = f"{100 * r['acceptance_rate']:6.1f}%" if "acceptance_rate" in r else "      -"
        tpc = f"{r['tokens_per_verifier_call']:8.2f}" if "tokens_per_verifier_call" in r else "       -"
        split = (f"{1000 * r['draft_s_per_step']:8.1f} {1000 * r['verify_s_per_step']:9.1f} {100 * r['overhead_share']:6.1f}%"
                 if "draft_s_per_step" in r else f"{'-':>8} {'-':>9} {'-':>7}")
        vs_hf = f"{r['ratio_vs_transformers_counterpart']:5.2f}x" if "ratio_vs_transformers_counterpart" in r else f"{'-':>6}"
        rc = (f"{r['r_verify_over_plain_step']:5.2f} {r['c_draft_token_over_verify']:6.3f}"
              if "r_verify_over_plain_step" in r else f"{'-':>5} {'-':>6}")
        print(f"{r['prompt']:<22} {r['method']:<44} {r['tokens_per_s']:6.1f} {r['speedup_vs_plain']:7.2f}x {r['speedup_vs_engine_plain']:5.2f}x {vs_hf} {acc} {tpc} {split} {rc} {r['lossless']}")
    tree_results = _tree_section(args, verifier, prompts, k, max_new) if args.trees is not None else {}
    result = {
        **tree_results,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "threads": torch.get_num_threads()},
        "settings": {"k": k, "max_new_tokens": max_new, "repeats": args.repeats, "early_exit": args.early_exit,
                     "head_ks": args.head_ks, "bf16": args.bf16, "draft_confidence": args.draft_confidence},
        "load_s": load_s, "rss_after_load_mb": rss_loaded, "peak_rss_mb": psutil.Process().memory_info().rss / 2**20,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"\nload {load_s:.1f} s, RSS after load {rss_loaded:.0f} MB; wrote {args.out}")
    return 0


def _tree_section(args, verifier, prompts: dict, k: int, max_new: int) -> dict:
    """Tree drafts (bench/trees.py): a separate table, so the rows above keep their meaning."""
    from bench.trees import DEFAULT_SHAPES, tree_rows, verify_cost_rows

    shapes = args.trees or list(DEFAULT_SHAPES)
    print("\ntrees vs chains of the same depth (greedy):")
    forward = "bf16" if args.bf16 else "auto"  # with --bf16 the tree section runs where extra nodes are cheap
    rows = tree_rows(verifier, prompts, ["same", f"early-exit:{args.early_exit}", "ngram", "head"], shapes, k, max_new,
                     args.repeats, frozenset(CHAT), forward)
    print("\nverify cost:")
    return {"tree_rows": rows, "verify_cost": verify_cost_rows(verifier, next(iter(prompts.values())), k, forward=forward)}


def _session(verifier, drafter: str, k: int, max_new: int, forward: str = "auto", chat: bool = False,
             draft_confidence: float = 0.0) -> Session:
    config = SpecConfig(verifier=verifier.name, drafter=drafter, block_size=k, draft_mode="greedy",
                        max_new_tokens=max_new, forward=forward, chat=chat, draft_confidence=draft_confidence)
    return Session.from_loaded(config, verifier)


def _engine_run(session: Session, prompt: str):
    def run():
        session.reset(prompt)
        session.run()
        return list(session.new_token_ids)
    return run


def _split(stats) -> dict:
    """A step's time: the drafter's forwards, the verifier's forward, and everything else (the engine's own work)."""
    other = stats.wall_s - stats.draft_s - stats.verify_s
    return {"draft_s_per_step": stats.draft_s / stats.steps, "verify_s_per_step": stats.verify_s / stats.steps,
            "other_s_per_step": other / stats.steps, "overhead_share": other / stats.wall_s}


if __name__ == "__main__":
    sys.exit(main())
