"""The auto schedule against every fixed configuration of a grid, on this machine, in one round-robin run.

    .venv/bin/python bench/auto.py [--repeats 2] [--final-repeats 7] [--finalists 3] [--max-new-tokens 64]
                                   [--prompt NAME ...] [--quick]

Grid: plain decoding (k = 0), each drafter's chains k = 1..6 and trees 2, 3, 4, 8, 4,2 and dynamic:8 (k = 3), in fp32, and in bf16 where
the probe finds bf16 exact on this CPU (engine/forward/bf16_probe.py). Against them: the default (ngram+head, -k auto) and
-k auto --tree auto. Plain greedy decoding with the engine's own loop is the baseline, in the same round robin.
Every method's output is checked against plain decoding. Each timed auto run starts with no acceptance learnt (what
passes cost, verify and drafting, is kept from the warm-up, as the matmul plan is: start-up, not decoding).

Two stages per prompt, because the best of 24 noisy medians is biased upward (the winner's curse: on this 2-core
VM one configuration's median moves 10-20% between runs, so the grid's maximum is mostly its luckiest row):
1. screen: every method, `--repeats` rounds, round robin; the `--finalists` fastest fixed configurations go on;
2. final: plain decoding, the finalists and the two auto methods, `--final-repeats` fresh rounds, round robin.
The verdict (auto / best fixed) uses only the final rounds, so choosing the best and measuring it use different
samples. Prints a table per prompt and the verdict, writes bench/results/auto-latest.json after every final.

Two verdicts. Per prompt: auto against the fastest fixed configuration in that prompt's final, an oracle that knew
the prompt in advance. On a 64-token text that oracle also picks the luckiest step alignment: replaying recorded
drafts with fixed costs (bench/auto_replay.py, no timing noise) moves the best fixed k by 15-19% on the grounded
prompts with where its steps start. Per kind of prompt (open-ended, grounded), as a user chooses: the one fixed
configuration with the best geometric mean over that kind's prompts (its `--kind-leaders` best by the screens go
into every final of that kind), against auto's geometric mean over the same finals.
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
from bench.prompts import AUTO_EXTRA, CHAT, PROMPTS  # noqa: E402
from engine import EngineError, Session, SpecConfig, load_model  # noqa: E402

DRAFTERS = ("head", "ngram+head")
CHAINS = tuple(range(1, 7))
TREES = ("2", "3", "4", "8", "4,2", "dynamic:8")
DYNAMIC_DEPTH = 3
TARGET = 0.95  # auto's tokens/s against the best fixed configuration's, per prompt


def configs(forwards: list[str]) -> dict[str, dict]:
    grid = {}
    for forward in forwards:
        suffix = "" if forward == "auto" else " bf16"
        for drafter in DRAFTERS:
            for k in CHAINS:
                grid[f"{drafter} k={k}{suffix}"] = dict(drafter=drafter, block_size=k, forward=forward)
            for tree in TREES:
                k = DYNAMIC_DEPTH if tree.startswith("dynamic") else len(tree.split(","))
                grid[f"{drafter} tree {tree}{suffix}"] = dict(drafter=drafter, block_size=k, tree=tree, forward=forward)
    return grid


AUTO = {
    "auto (default: ngram+head -k auto)": dict(drafter="ngram+head", block_size_schedule="auto"),
    "auto with trees (-k auto --tree auto)": dict(drafter="ngram+head", block_size_schedule="auto", tree="auto"),
}


def bf16_exact(verifier) -> bool:
    try:
        Session.from_loaded(SpecConfig(verifier=verifier.name, drafter="ngram", forward="bf16"), verifier)
        return True
    except EngineError as error:
        print(f"bf16 rows left out: {error}", flush=True)
        return False


def timed_rounds(sessions: dict, plain, prompt: str, rounds: int) -> tuple[dict, dict]:
    """Round robin: each round runs plain decoding and every session once; returns walls and the last sessions' steps."""
    walls = {label: [] for label in ["plain greedy (engine)", *sessions]}
    outputs = {}
    for _ in range(rounds):  # a slow moment of the machine hits every method alike
        begin = time.perf_counter()
        plain.baseline()
        walls["plain greedy (engine)"].append(time.perf_counter() - begin)
        for label, session in sessions.items():
            if session.planner is not None:
                session.planner.forget_acceptance()  # no acceptance carried over from the previous run
            begin = time.perf_counter()
            session.reset(prompt)
            session.run()
            walls[label].append(time.perf_counter() - begin)
            outputs[label] = list(session.new_token_ids)
    return walls, outputs


def choices_of(session) -> dict[str, int]:
    choices = {}
    for step in session.steps:
        if step.plan:
            shape = step.plan.removeprefix("auto: ").split(";")[0]
            choices[shape] = choices.get(shape, 0) + 1
    return choices


def kind_of(name: str) -> str:
    return "grounded" if "(grounded)" in name else "open-ended"


def geomean(values) -> float:
    return statistics.geometric_mean(list(values))


class PromptRun:
    """One prompt's sessions, its plain reference, and its screen."""

    def __init__(self, verifier, name: str, prompt: str, methods: dict[str, dict], args):
        self.name, self.prompt, self.args = name, prompt, args
        chat = name in CHAT
        self.sessions = {label: Session.from_loaded(SpecConfig(verifier=verifier.name, draft_mode="greedy", chat=chat,
                                                               max_new_tokens=args.max_new_tokens, **settings), verifier)
                         for label, settings in methods.items()}
        self.plain = Session.from_loaded(SpecConfig(verifier=verifier.name, drafter="ngram", chat=chat,
                                                    max_new_tokens=args.max_new_tokens), verifier)
        self.plain.reset(prompt)
        self.reference = list(self.plain.baseline().token_ids[len(self.plain.prompt_ids):])
        for session in self.sessions.values():  # warm-up; an auto session times its verify passes here
            session.reset(prompt)
            session.run()
        self.screen, self.outputs = timed_rounds(self.sessions, self.plain, prompt, args.repeats)
        self.speed = {label: len(self.outputs[label]) / statistics.median(self.screen[label]) for label in self.sessions}

    def fixed_by_speed(self) -> list[str]:
        return sorted((label for label in self.sessions if label not in AUTO), key=lambda label: -self.speed[label])

    @property
    def plain_screen_tps(self) -> float:
        return len(self.reference) / statistics.median(self.screen["plain greedy (engine)"])

    def vs_plain_screen(self, label: str) -> float:
        return self.speed[label] / self.plain_screen_tps

    def final_rows(self, finalists: list[str]) -> list[dict]:
        final_sessions = {label: self.sessions[label] for label in [*finalists, *AUTO]}
        final, final_outputs = timed_rounds(final_sessions, self.plain, self.prompt, self.args.final_repeats)
        self.outputs.update(final_outputs)
        name, screen, reference = self.name, self.screen, self.reference
        plain_screen = self.plain_screen_tps
        plain_tps = len(reference) / statistics.median(final["plain greedy (engine)"])
        rows = [{"prompt": name, "method": "plain greedy (engine)", "stage": "final", "tokens_per_s": plain_tps,
                 "vs_plain": 1.0, "runs_s": final["plain greedy (engine)"], "screen_runs_s": screen["plain greedy (engine)"]}]
        for label, session in self.sessions.items():
            in_final = label in final_sessions
            walls = final[label] if in_final else screen[label]
            tps = len(self.outputs[label]) / statistics.median(walls)
            rows.append({"prompt": name, "method": label, "stage": "final" if in_final else "screen",
                         "tokens_per_s": tps, "vs_plain": tps / (plain_tps if in_final else plain_screen),
                         "runs_s": walls, "screen_runs_s": screen[label], "screen_tokens_per_s": self.speed[label],
                         "tokens_per_call": session.stats.tokens_per_verifier_call,
                         "lossless": self.outputs[label] == reference[:len(self.outputs[label])],
                         "auto_choices": choices_of(session)})
        return rows


def kind_leaders(runs: list[PromptRun], count: int) -> dict[str, list[str]]:
    """Per kind of prompt: the fixed configurations with the best geometric mean over plain in that kind's screens."""
    leaders = {}
    for kind in dict.fromkeys(kind_of(run.name) for run in runs):
        mine = [run for run in runs if kind_of(run.name) == kind]
        labels = [label for label in mine[0].sessions if label not in AUTO]
        ranked = sorted(labels, key=lambda label: -geomean(run.vs_plain_screen(label) for run in mine))
        leaders[kind] = ranked[:count]
    return leaders


def report(rows: list[dict]) -> list[dict]:
    verdicts = []
    for prompt in dict.fromkeys(r["prompt"] for r in rows):
        mine = sorted((r for r in rows if r["prompt"] == prompt), key=lambda r: (r["stage"] != "final", -r["tokens_per_s"]))
        # Plain decoding is a fixed configuration too (k = 0), and auto may choose it.
        finalists = [r for r in mine if r["stage"] == "final" and r["method"] not in AUTO]
        best = max(finalists, key=lambda r: r["tokens_per_s"])
        print(f"\n{prompt} (final rounds, then the rest of the screen)")
        for r in mine:
            extra = f" {r['tokens_per_call']:.2f} tok/call" if "tokens_per_call" in r else ""
            flag = "" if r.get("lossless", True) else "  NOT LOSSLESS"
            print(f"  {r['stage']:<6} {r['method']:<40} {r['tokens_per_s']:6.1f} tok/s {r['vs_plain']:5.2f}x plain{extra}{flag}")
        for label in AUTO:
            row = next(r for r in mine if r["method"] == label)
            ratio = row["tokens_per_s"] / best["tokens_per_s"]
            paired = statistics.median(b / a for a, b in zip(row["runs_s"], best["runs_s"]))  # same round, same load
            verdicts.append({"prompt": prompt, "auto": label, "best_fixed": best["method"], "ratio": ratio,
                             "paired_ratio": paired, "meets_target": ratio >= TARGET, "choices": row["auto_choices"]})
            top = ", ".join(f"{shape} {n}x" for shape, n in sorted(row["auto_choices"].items(), key=lambda i: -i[1])[:4])
            print(f"  -> {label}: {ratio:.2f}x the best fixed ({best['method']}; paired by round {paired:.2f}x); chose {top}")
    return verdicts


def report_kinds(rows: list[dict]) -> list[dict]:
    """Per kind: the fixed configuration with the best geometric mean tok/s over that kind's finals, against auto's."""
    verdicts = []
    finals = [r for r in rows if r["stage"] == "final"]
    for kind in dict.fromkeys(kind_of(r["prompt"]) for r in finals):
        mine = [r for r in finals if kind_of(r["prompt"]) == kind]
        prompts = list(dict.fromkeys(r["prompt"] for r in mine))
        by_method: dict[str, dict[str, dict]] = {}
        for r in mine:
            by_method.setdefault(r["method"], {})[r["prompt"]] = r
        everywhere = {m: byp for m, byp in by_method.items() if len(byp) == len(prompts)}  # in every final of the kind
        fixed = {m: byp for m, byp in everywhere.items() if m not in AUTO}
        best = max(fixed, key=lambda m: geomean(r["tokens_per_s"] for r in fixed[m].values()))
        best_tps = geomean(r["tokens_per_s"] for r in fixed[best].values())
        print(f"\n{kind} prompts ({len(prompts)}): best single fixed configuration over their finals: {best} "
              f"(geomean {best_tps:.1f} tok/s)")
        for label in AUTO:
            auto_rows = everywhere[label]
            ratio = geomean(auto_rows[p]["tokens_per_s"] for p in prompts) / best_tps
            paired = geomean(statistics.median(b / a for a, b in zip(auto_rows[p]["runs_s"], fixed[best][p]["runs_s"]))
                             for p in prompts)
            verdicts.append({"kind": kind, "prompts": prompts, "auto": label, "best_fixed": best, "ratio": ratio,
                             "paired_ratio": paired, "meets_target": ratio >= TARGET})
            print(f"  -> {label}: {ratio:.2f}x (paired by round {paired:.2f}x)")
    return verdicts


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2, help="screening rounds over the whole grid")
    parser.add_argument("--final-repeats", type=int, default=7, help="fresh rounds for the finalists and auto")
    parser.add_argument("--finalists", type=int, default=3, help="fixed configurations that go on to the final")
    parser.add_argument("--kind-leaders", type=int, default=2,
                        help="fixed configurations per kind of prompt (best screen geomean) added to its finals")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--prompt", action="append", help="only the prompt of this name, or those whose name contains it (repeatable)")
    parser.add_argument("--quick", action="store_true", help="1 repeat, 24 tokens, 2 prompts")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "auto-latest.json"))
    args = parser.parse_args()
    prompts = {**PROMPTS, **AUTO_EXTRA}
    if args.quick:
        args.repeats, args.final_repeats, args.max_new_tokens = 1, 1, 24
        prompts = {k: prompts[k] for k in ("open-ended", "code edit (grounded)")}
    if args.prompt:  # a name given in full picks that prompt alone ("open-ended" is part of three names)
        exact = [part for part in args.prompt if part in prompts]
        prompts = {name: text for name, text in prompts.items()
                   if name in exact or any(part in name for part in args.prompt if part not in exact)}
    verifier = load_model("smollm2-135m")
    forwards = ["auto"] + (["bf16"] if bf16_exact(verifier) else [])
    methods = {**configs(forwards), **AUTO}
    print(f"cpu: {cpu_name()}; torch threads {torch.get_num_threads()}; {len(methods)} methods x {len(prompts)} "
          f"prompts x {args.repeats} repeats", flush=True)
    rows: list[dict] = []
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)

    def write(verdicts: list[dict] | None, kind_verdicts: list[dict] | None) -> None:  # after every final too
        Path(args.out).write_text(json.dumps({"settings": vars(args), "cpu": cpu_name(), "torch": torch.__version__,
                                              "torch_threads": torch.get_num_threads(), "forwards": forwards,
                                              "complete": verdicts is not None, "rows": rows,
                                              "verdicts": verdicts or [],
                                              "kind_verdicts": kind_verdicts or []}, indent=1))

    runs = []
    for name, prompt in prompts.items():  # every screen first: the kinds' leaders join each final
        runs.append(PromptRun(verifier, name, prompt, methods, args))
        print(f"  screened: {name}", flush=True)
    leaders = kind_leaders(runs, args.kind_leaders)
    print(f"kind leaders by the screens: {leaders}", flush=True)
    for run in runs:
        finalists = list(dict.fromkeys([*run.fixed_by_speed()[:args.finalists], *leaders[kind_of(run.name)]]))
        rows += run.final_rows(finalists)
        write(None, None)
        print(f"  done: {run.name}", flush=True)
    write(report(rows), report_kinds(rows))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
