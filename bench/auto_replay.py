"""`-k auto` replayed over recorded drafts with recorded costs: its choices against every fixed chain, with no timing noise.

    .venv/bin/python bench/auto_replay.py --record   # the bench prompts' drafts and this machine's costs (about 3 min)
    .venv/bin/python bench/auto_replay.py            # the replay: plain, each drafter's k = 1..6 and auto (seconds)

Greedy decoding makes every run of a prompt the same text, and what a drafter proposes after a context does not
depend on the blocks that led there. So `--record` stores, for every position of each bench prompt's greedy text,
what `ngram+head` drafts there (its part, 9 deep: the head's rank of the verifier's token at each depth, lookup's
hits), and this machine's costs (a verify pass of 1..10 tokens, a drafting pass of each part, a step's bookkeeping,
plain decoding's seconds per token). The replay then walks each text as a session would, block after block, and
charges each step those costs. The real AutoPlanner chooses auto's blocks and learns from the replayed steps; it is
given the recorded costs as its start-up curve, so what it must still learn is the acceptance, as in a real run.

What this shows that the timed bench cannot (bench/auto.py): which planner rule is better, in seconds and without
the VM's 10-20% noise; and how much of the best fixed row's lead on one short text is where its steps happen to
start (`--offsets`: the same fixed k after 0..5 plain tokens). What it cannot show: a cost that moves during a run.
Writes bench/results/auto-replay-latest.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.drafting.draft_head import conditional_acceptance  # noqa: E402
from engine.drafting.lookup_card import lookup_prior  # noqa: E402
from engine.planning.auto_plan import MEASURED_PASSES, AutoPlanner, VerifyCosts  # noqa: E402
from engine.records.results import Decision  # noqa: E402

RECORD = Path(__file__).parent / "results" / "replay-drafts.json"
DEPTH = 9  # drafts recorded per position (auto drafts at most 8)
CHAINS = range(1, 7)
MAX_NEW_TOKENS = 64


# ---- recording (needs the model) ----------------------------------------------------------------------------


def record_text(session, prompt: str) -> tuple[dict, float]:
    """What an `ngram+head` session drafts at every position of `prompt`'s greedy text, and plain decoding's wall."""
    import torch

    from engine.session import prefill

    session.reset(prompt)
    baseline = session.baseline()
    ids, start = list(baseline.token_ids), len(session.prompt_ids)
    head, lookup = session.drafter.head, session.drafter.lookup
    knobs, generator = session._knobs(), torch.Generator()
    positions = []
    for t in range(start, len(ids)):  # the context is ids[:t]; the verifier's next tokens are ids[t:]
        context, truth = ids[:t], ids[t:t + DEPTH]
        prefill(session.verifier_lm, session.drafter, context)  # as after a step: all but the last token cached
        proposal = head.propose(context, len(truth), knobs, generator)
        ranks = []
        for depth, probs in enumerate(proposal.drafter_probs):
            top = probs.topk(5).indices.tolist()
            ranks.append(top.index(truth[depth]) + 1 if truth[depth] in top else None)
        copied = lookup.lookup(context, len(truth)) if session.drafter.source_for(context) == "lookup" else []
        positions.append({"head_ranks": ranks, "lookup_hits": [a == b for a, b in zip(copied, truth)] or None})
    return {"new_tokens": baseline.new_tokens, "finish": baseline.finish_reason, "positions": positions}, baseline.wall_s


def record(path: Path, rounds: int) -> None:
    import torch

    from bench.machine import cpu_name
    from bench.prompts import AUTO_EXTRA, CHAT, PROMPTS
    from engine import Session, SpecConfig, load_model
    from engine.forward.costs import pass_seconds

    verifier = load_model("smollm2-135m")
    texts, head_pass, lookup_pass, bookkeeping, plain_bookkeeping = {}, [], [], [], []
    for name, prompt in {**PROMPTS, **AUTO_EXTRA}.items():
        config = SpecConfig(verifier=verifier.name, drafter="ngram+head", chat=name in CHAT,
                            max_new_tokens=MAX_NEW_TOKENS)
        session = Session.from_loaded(config.replace(block_size=DEPTH), verifier)
        texts[name], _ = record_text(session, prompt)
        positions = texts[name]["positions"]
        timed = Session.from_loaded(config.replace(block_size_schedule="auto"), verifier)  # drafting, bookkeeping
        for _ in range(2):
            timed.reset(prompt)
            timed.run()
            for step in timed.steps:
                if step.drafted:
                    (head_pass if step.drafted_by == "head" else lookup_pass).append(step.draft_s / step.drafted)
                (bookkeeping if step.drafted else plain_bookkeeping).append(step.step_s - step.draft_s - step.verify_s)
        print(f"recorded {name}: {len(positions)} positions ({texts[name]['finish']})", flush=True)
    # The verify passes and the plain loop timed in the same rounds, each its fastest round's median: a VM spike
    # slows one round, never speeds one up, and prices taken minutes apart would disagree by 5% (26.2 ms a 1-token
    # pass against 25.0 ms a plain-loop token, in the first recording), which the replay would read as auto's
    # plain step losing to the plain loop.
    sizes = range(1, DEPTH + 2)
    rounds_s = {n: [] for n in sizes}
    plain_s = []
    timed.reset(PROMPTS["open-ended"])
    for _ in range(rounds):
        baseline = timed.baseline()
        plain_s.append(baseline.wall_s / baseline.new_tokens)
        for n in sizes:
            rounds_s[n].append(pass_seconds(timed, n, repeats=5))
    verify_s = {n: min(seconds) for n, seconds in rounds_s.items()}
    data = {"cpu": cpu_name(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "costs": {"verify_s": verify_s, "plain_s_per_token": min(plain_s),
                      "drafting_pass_s": {"head": statistics.median(head_pass),
                                          "lookup": statistics.median(lookup_pass) if lookup_pass else 0.0},
                      "bookkeeping_s": statistics.median(bookkeeping),
                      "plain_bookkeeping_s": statistics.median(plain_bookkeeping or bookkeeping)},
            "max_new_tokens": MAX_NEW_TOKENS, "texts": texts}
    path.write_text(json.dumps(data, indent=0))
    print(f"plain loop {min(plain_s) * 1e3:.1f} ms a token; plain steps' bookkeeping "
          f"{data['costs']['plain_bookkeeping_s'] * 1e3:.2f} ms, drafting steps' {data['costs']['bookkeeping_s'] * 1e3:.2f} ms")
    print(f"wrote {path}: verify ms {', '.join(f'{n}: {s * 1e3:.1f}' for n, s in verify_s.items())}")


# ---- the replay (no model) ----------------------------------------------------------------------------------


class Replay:
    """One recorded text walked block by block, each step charged the recorded costs."""

    def __init__(self, text: dict, costs: dict, max_new_tokens: int, guesses: bool = True):
        self.positions, self.new_tokens = text["positions"], text["new_tokens"]
        self.verify_s = verify_costs(costs)
        self.pass_s = costs["drafting_pass_s"]
        # A step's seconds outside its passes: a plain step's apart (one column of records), where recorded.
        self.bookkeeping_s = {False: costs["bookkeeping_s"], True: costs.get("plain_bookkeeping_s", costs["bookkeeping_s"])}
        self.max_new_tokens = max_new_tokens
        self.guesses = guesses  # auto re-measures plain runs by unverified guesses (greedy), as a session does

    @staticmethod
    def source(position: dict, drafter: str) -> str:
        return "lookup" if drafter == "ngram+head" and position["lookup_hits"] else "head"

    @staticmethod
    def ranks(position: dict, source: str, depth: int) -> list[int | None]:
        """The verifier's token's rank among the part's drafts at each depth (lookup: 1 where it copied it)."""
        if source == "lookup":
            return [1 if hit else None for hit in position["lookup_hits"][:depth]]
        return position["head_ranks"][:depth]

    def step(self, made: int, source: str, depth: int) -> tuple[int, SimpleNamespace]:
        """(tokens emitted, the step's record as the planner reads it) for `depth` drafts after `made` tokens."""
        ranks = self.ranks(self.positions[made], source, depth)
        kept = next((i for i, rank in enumerate(ranks) if rank != 1), len(ranks))
        records = []  # the drafter's top 5 is ids 1..5; the verifier's token is id `rank` (99: outside them)
        for i, rank in enumerate(ranks[:kept + 1]):
            decision = Decision.ACCEPTED if i < kept else Decision.REJECTED
            top = () if source == "lookup" else tuple(SimpleNamespace(token_id=j) for j in range(1, 6))
            records.append(SimpleNamespace(draft_id=1, verifier_id=rank or 99, decision=decision, draft_top=top))
        records.append(SimpleNamespace(draft_id=None, verifier_id=0, decision=Decision.ACCEPTED, draft_top=()))
        drafted = len(ranks)
        draft_s = drafted * self.pass_s[source]
        verify_s = self.verify_s[drafted + 1]
        emitted = min(kept + 1, self.new_tokens - made)  # the text's end (EOS) cuts the block
        return emitted, SimpleNamespace(drafted=drafted, depth=drafted, draft_s=draft_s, verify_s=verify_s, guess=None,
                                        step_s=draft_s + verify_s + self.bookkeeping_s[not drafted],
                                        verify_mode="greedy",
                                        positions=tuple(records))

    def fixed_steps(self, drafter: str, k: int, offset: int = 0) -> list[SimpleNamespace]:
        """The steps of a fixed chain of k (after `offset` plain steps), with `emitted` added to each."""
        made, steps = 0, []
        while made < self.new_tokens:
            depth = 0 if made < offset else min(k, self.limit(made))
            emitted, result = self.step(made, self.source(self.positions[made], drafter), depth)
            result.emitted = emitted
            made += emitted
            steps.append(result)
        return steps

    def fixed(self, drafter: str, k: int, offset: int = 0) -> float:
        """Tokens/s of a fixed chain of k (after `offset` plain steps)."""
        return self.new_tokens / sum(step.step_s for step in self.fixed_steps(drafter, k, offset))

    def limit(self, made: int) -> int:
        return self.max_new_tokens - made  # the session cannot see an EOS coming

    def auto(self, planner: AutoPlanner) -> tuple[float, dict[str, int]]:
        """Tokens/s of `-k auto` over the text, and its choices; the planner keeps what it learnt (costs)."""
        planner.forget_acceptance()
        made, seconds, choices = 0, 0.0, {}
        while made < self.new_tokens:
            source = self.source(self.positions[made], "ngram+head")
            plan = planner.choose(source, self.limit(made), guesses=self.guesses)
            shape = plan.reason.removeprefix("auto: ").split(";")[0]
            choices[shape] = choices.get(shape, 0) + 1
            emitted, result = self.step(made, source, 0 if plan.plain else min(plan.block_size, self.limit(made)))
            if plan.guess:  # a guess beside the plain step: one drafting pass, the verifier's token's rank
                result.draft_s = self.pass_s[source]
                result.step_s += result.draft_s
                result.guess = SimpleNamespace(rank=self.ranks(self.positions[made], source, 1)[0])
            planner.observe(result, plan.source, plan.plain)
            made, seconds = made + emitted, seconds + result.step_s
        return self.new_tokens / seconds, choices


def verify_costs(costs: dict) -> dict[int, float]:
    """Verify seconds by pass size (JSON keys are strings)."""
    return {int(n): s for n, s in costs["verify_s"].items()}


def new_planner(data: dict, prior: tuple[float, ...], lookup_card: bool = True) -> AutoPlanner:
    """A planner as `ngram+head -k auto` makes it: the head's card for the head, lookup's card for lookup."""
    verify_s = verify_costs(data["costs"])
    curve = {n: verify_s[n] for n in MEASURED_PASSES if n in verify_s}
    lookup = lookup_prior("ngram+head") if lookup_card else ()
    return AutoPlanner(VerifyCosts(curve), prior_of=lambda source: prior if source == "head" else lookup)


def head_prior() -> tuple[float, ...]:
    """The shipped head's card, by depth, as the head drafter reads it."""
    card = json.loads((Path(__file__).resolve().parent.parent / "engine/drafting/heads/smollm2-135m/card.json").read_text())
    return conditional_acceptance(card["held_out"]["per_position_acceptance"])


def replay(data: dict, offsets: int, lookup_card: bool = True, guesses: bool = True) -> dict:
    plain_tps = 1 / data["costs"]["plain_s_per_token"]
    planner = new_planner(data, head_prior(), lookup_card)
    rows = {}
    print(f"recorded on: {data['cpu']}, torch {data['torch']}, {data['threads']} threads")
    print(f"{'prompt':<26} {'best fixed (x plain)':<28} {'its start moved 0..' + str(offsets):<20} {'auto x plain':>12} "
          f"{'auto / best':>11}  auto's choices")
    for name, text in data["texts"].items():
        walk = Replay(text, data["costs"], data["max_new_tokens"], guesses)
        chains = {f"{drafter} k={k}": (drafter, k) for drafter in ("head", "ngram+head") for k in CHAINS}
        fixed = {"plain greedy": plain_tps, **{label: walk.fixed(*chain) for label, chain in chains.items()}}
        best = max(fixed, key=fixed.get)
        spread = [walk.fixed(*chains[best], offset) for offset in range(offsets + 1)] if best in chains else [plain_tps]
        walk.auto(planner)  # warm-up: the drafting passes' costs, as the timed bench's warm-up run
        auto_tps, choices = walk.auto(planner)
        rows[name] = {"fixed_tokens_per_s": fixed, "best_fixed": best, "best_offsets_tokens_per_s": spread,
                      "auto_tokens_per_s": auto_tps, "auto_choices": choices, "plain_tokens_per_s": plain_tps}
        top = ", ".join(f"{shape} {n}" for shape, n in sorted(choices.items(), key=lambda i: -i[1])[:3])
        print(f"{name:<26} {best + f' ({fixed[best] / plain_tps:.2f}x)':<28} "
              f"{f'{min(spread) / plain_tps:.2f}-{max(spread) / plain_tps:.2f}x':<20} {auto_tps / plain_tps:>11.2f}x "
              f"{auto_tps / fixed[best]:>10.2f}x  {top}")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--record", action="store_true", help="record the drafts and this machine's costs first")
    parser.add_argument("--rounds", type=int, default=5, help="with --record: timing rounds per verify size")
    parser.add_argument("--offsets", type=int, default=5, help="the best fixed row again after 1..N plain tokens")
    parser.add_argument("--drafts", default=str(RECORD), help="the recording to replay")
    parser.add_argument("--no-lookup-card", action="store_true", help="start lookup at the generic prior, not its card")
    parser.add_argument("--blocks-to-re-measure", action="store_true",
                        help="in plain runs re-measure by a verified k = 1 block, not by an unverified guess")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "auto-replay-latest.json"))
    args = parser.parse_args()
    if args.record:
        record(Path(args.drafts), args.rounds)
    data = json.loads(Path(args.drafts).read_text())
    rows = replay(data, args.offsets, lookup_card=not args.no_lookup_card, guesses=not args.blocks_to_re_measure)
    Path(args.out).write_text(json.dumps({"drafts": args.drafts, "cpu": data["cpu"], "rows": rows}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
