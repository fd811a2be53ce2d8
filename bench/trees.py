"""Tree drafts against chains of the same depth, and what verifying N tree nodes costs against k + 1 tokens.

Called by bench/run.py with `--trees SHAPE [SHAPE ...]` (e.g. `--trees 3,2,1,1 dynamic:12`), or on its own:

    .venv/bin/python bench/trees.py [--trees 3,2,1,1 dynamic:12] [--k 4] [--repeats 3] [--quick]

Every shape is compared with the chain whose depth it shares (static: its number of widths; dynamic: k), same
drafter, greedy drafting and verification, same prompts, methods round robin. Writes bench/results/trees-latest.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import Session, SpecConfig, parse_tree  # noqa: E402
from engine.forward.matmul import planned  # noqa: E402  (the matmul layout chosen per row count)
from engine.drafting.tree import ROOT, DraftTree, verify_inputs  # noqa: E402

DEFAULT_SHAPES = ("3,2,1,1", "2,2,2,2", "dynamic:12")
NODE_COUNTS = (1, 2, 3, 4, 8, 12, 16, 32)  # tree nodes in a timed verify pass (each + the pending token)


def _session(verifier, drafter: str, k: int, max_new: int, tree: str | None, chat: bool = False,
             forward: str = "auto") -> Session:
    config = SpecConfig(verifier=verifier.name, drafter=drafter, block_size=k, draft_mode="greedy",
                        max_new_tokens=max_new, tree=tree, chat=chat, forward=forward)
    return Session.from_loaded(config, verifier)


def tree_rows(verifier, prompts: dict, drafters: list[str], shapes: list[str], k: int, max_new: int,
              repeats: int, chat_prompts: frozenset = frozenset(), forward: str = "auto") -> list[dict]:
    """Tokens per verifier call and tokens/s: each tree shape against the chain of its depth (same forward)."""
    rows = []
    for prompt_name, prompt in prompts.items():
        chat = prompt_name in chat_prompts
        methods = {}  # name -> (session, chain name it is compared with)
        for drafter in drafters:
            for shape_spec in shapes:
                shape = parse_tree(shape_spec)
                depth = shape.depth(k)
                chain = f"engine {drafter} chain k={depth}"
                if chain not in methods:
                    methods[chain] = (_session(verifier, drafter, depth, max_new, None, chat, forward), None)
                methods[f"engine {drafter} tree {shape_spec}"] = (
                    _session(verifier, drafter, depth, max_new, shape_spec, chat, forward), chain)
        # Plain decoding in the same round robin: at fp32 (the fastest plain decoding here) and at the rows' precision.
        plains = {f"plain greedy (engine, {'bf16' if f == 'bf16' else 'fp32'})": _session(verifier, "ngram", 1, max_new, None, chat, f)
                  for f in dict.fromkeys(("auto", forward))}
        for session in plains.values():
            session.reset(prompt)
        for session, _ in methods.values():  # warm-up
            session.reset(prompt)
            session.run()
        walls = {name: [] for name in [*plains, *methods]}
        outputs, stats = {}, {}
        for _ in range(repeats):  # round robin, as bench/run.py
            for name, session in plains.items():
                result = session.baseline(max_new)
                walls[name].append(result.wall_s)
                outputs[name] = list(result.token_ids[len(session.prompt_ids) :])
            for name, (session, _) in methods.items():
                begin = time.perf_counter()
                session.reset(prompt)
                session.run()
                walls[name].append(time.perf_counter() - begin)
                outputs[name], stats[name] = list(session.new_token_ids), session.stats
        own_plain = f"plain greedy (engine, {'bf16' if forward == 'bf16' else 'fp32'})"
        reference = outputs[own_plain]
        for name in plains:
            median = statistics.median(walls[name])
            rows.append({"prompt": prompt_name, "method": name, "new_tokens": len(outputs[name]), "median_s": median,
                         "tokens_per_s": len(outputs[name]) / median, "runs_s": walls[name]})
            print(f"  {prompt_name:<22} {name:<36} {rows[-1]['tokens_per_s']:6.1f} tok/s", flush=True)
        for name, (session, chain) in methods.items():
            s, median = stats[name], statistics.median(walls[name])
            row = {"prompt": prompt_name, "method": name, "forward": forward, "new_tokens": len(outputs[name]), "median_s": median,
                   "tokens_per_s": len(outputs[name]) / median, "runs_s": walls[name],
                   "lossless": outputs[name] == reference[: len(outputs[name])],
                   "nodes_per_step": s.nodes_per_step, "accepted_per_step": s.mean_accepted,
                   "tokens_per_verifier_call": s.tokens_per_verifier_call,
                   "draft_s_per_step": s.draft_s / s.steps, "verify_s_per_step": s.verify_s / s.steps}
            rows.append(row)
        by_name = {r["method"]: r for r in rows if r["prompt"] == prompt_name}
        for name in methods:
            by_name[name]["tokens_per_s_vs_plain_fp32"] = by_name[name]["tokens_per_s"] / by_name["plain greedy (engine, fp32)"]["tokens_per_s"]
            by_name[name]["tokens_per_s_vs_own_plain"] = by_name[name]["tokens_per_s"] / by_name[own_plain]["tokens_per_s"]
        for name, (_, chain) in methods.items():
            if chain:
                row, base = by_name[name], by_name[chain]
                row["tokens_per_call_vs_chain"] = row["tokens_per_verifier_call"] / base["tokens_per_verifier_call"]
                row["tokens_per_s_vs_chain"] = row["tokens_per_s"] / base["tokens_per_s"]
                row["verify_s_vs_chain"] = row["verify_s_per_step"] / base["verify_s_per_step"]
        for name in methods:
            r = by_name[name]
            print(f"  {prompt_name:<22} {name:<36} {r['tokens_per_s']:6.1f} tok/s {r['tokens_per_verifier_call']:5.2f} tok/call "
                  f"{r['nodes_per_step']:5.1f} nodes/step {r['tokens_per_s_vs_plain_fp32']:5.2f}x plain fp32 "
                  f"lossless={r['lossless']}", flush=True)
    return rows


def verify_cost_rows(verifier, prompt: str, k: int, node_counts=NODE_COUNTS, repeats: int = 15,
                     forward: str = "auto") -> list[dict]:
    """Seconds of one verifier pass over k + 1 chain tokens vs over N tree nodes (+ the pending token), same prefix.

    The ratio r(N) = t(N) / t(k + 1) is what the extra branches cost: a tree pays when its tokens per call
    grow by more than r(N).
    """
    session = Session.from_loaded(SpecConfig(verifier=verifier.name, drafter="ngram", forward=forward), verifier)
    session.reset(prompt)
    lm, context = session.verifier_lm, session.tokens
    cached = lm.length
    rng = random.Random(0)
    vocab = session.vocab

    def chain_pass():
        lm.rollback(cached)
        lm.extend(list(context[cached:]) + [rng.randrange(vocab) for _ in range(k)], keep=k + 1)

    def tree_pass(tree):
        lm.rollback(cached)
        tokens, mask, positions = verify_inputs(tree, list(context[cached:]), cached)
        lm.extend(tokens, keep=len(tree) + 1, positions=positions, mask=mask)

    trees = {n: _random_tree(n, k, vocab, rng) for n in node_counts}
    times = {"plain": [], "chain": [], **{n: [] for n in node_counts}}

    def plain_pass():  # one plain decoding step over the same prefix: the unit of r
        lm.rollback(cached)
        lm.extend(list(context[cached:]), keep=1)
    for _ in range(2):  # warm-up
        chain_pass()
        for tree in trees.values():
            tree_pass(tree)
    for _ in range(repeats):  # round robin
        begin = time.perf_counter()
        plain_pass()
        times["plain"].append(time.perf_counter() - begin)
        begin = time.perf_counter()
        chain_pass()
        times["chain"].append(time.perf_counter() - begin)
        for n, tree in trees.items():
            begin = time.perf_counter()
            tree_pass(tree)
            times[n].append(time.perf_counter() - begin)
    plain_s, chain_s = statistics.median(times["plain"]), statistics.median(times["chain"])
    rows = [{"pass": "plain step (1 token)", "tokens": 1, "median_s": plain_s},
            {"pass": f"chain k={k} ({k + 1} tokens)", "tokens": k + 1, "median_s": chain_s}]
    for n in node_counts:
        rows.append({"pass": f"tree of {n} nodes (+1 pending)", "tokens": n + 1, "median_s": statistics.median(times[n])})
    for r in rows:
        r["r_vs_plain"], r["ratio_vs_chain"] = r["median_s"] / plain_s, r["median_s"] / chain_s
        print(f"  verify {r['pass']:<28} {1000 * r['median_s']:7.1f} ms  r = {r['r_vs_plain']:.2f} of a plain step, "
              f"{r['ratio_vs_chain']:.2f} of the chain", flush=True)
    return rows


def _random_tree(nodes: int, depth: int, vocab: int, rng: random.Random) -> DraftTree:
    """A tree of `nodes` nodes at most `depth` deep (the cost of a pass depends on the count, not the shape)."""
    tree = DraftTree()
    depths = []
    for _ in range(nodes):
        candidates = [ROOT] + [i for i, d in enumerate(depths) if d < depth]
        parent = rng.choice(candidates)
        tree.add(rng.randrange(vocab), parent, None, 1.0, None)
        depths.append(1 if parent == ROOT else depths[parent] + 1)
    return tree


def main() -> int:
    from bench.prompts import CHAT, PROMPTS  # the same prompts as the main bench
    from engine import load_model

    parser = argparse.ArgumentParser()
    parser.add_argument("--trees", nargs="+", default=list(DEFAULT_SHAPES))
    parser.add_argument("--drafters", nargs="+", default=["same", "early-exit:20", "ngram"])
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prompt", action="append", help="only prompts whose name contains this (repeatable)")
    parser.add_argument("--quick", action="store_true", help="1 repeat, 24 tokens, the first prompt")
    parser.add_argument("--forward", choices=("auto", "bf16"), default="auto",
                        help="the verifier's forward for every row (bf16: verifying N nodes costs about one token)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "trees-latest.json"))
    args = parser.parse_args()
    prompts = dict(PROMPTS)
    if args.quick:
        args.repeats, args.max_new_tokens, prompts = 1, 24, dict(list(PROMPTS.items())[:1])
    if args.prompt:
        prompts = {name: text for name, text in prompts.items() if any(part in name for part in args.prompt)}
    verifier = load_model("smollm2-135m")
    rows = tree_rows(verifier, prompts, args.drafters, args.trees, args.k, args.max_new_tokens, args.repeats,
                     frozenset(CHAT), args.forward)
    cost = verify_cost_rows(verifier, next(iter(prompts.values())), args.k, forward=args.forward)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"settings": vars(args), "torch_threads": torch.get_num_threads(),
                                          "cpu": platform.processor() or platform.machine(),
                                          "matmul_layouts": planned(), "rows": rows, "verify_cost": cost}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
