"""`-k auto` and `--tree auto`: before each step, the chain length or tree shape with the most expected tokens per
second on this machine, from what this machine and this run measured.

The anchors are Sequoia (choose the tree from the hardware's verify cost and the drafter's acceptance by rank) and
EAGLE-2 (acceptance read from the drafts as they run). A fixed k cannot be right everywhere: which is fastest moved
between an Intel Xeon with AMX (chains of 2) and an AMD EPYC (a top-3 tree at depth 1), and within one text a lookup
that keeps hitting wants long blocks while the draft head wants short ones. Two measured inputs:
- the verify cost r(N): a pass of N tokens against a 1-token pass, timed once in a tight loop when the run starts
  (N = 1..13, the sizes the candidates need), then scaled as a whole by how the running steps compare with it
  (idle pauses between live steps and a busy CPU slow every size alike, so they change no ranking), and corrected
  size by size where a size keeps costing more or less than the curve said (a noisy start-up curve, a row count
  where the BLAS kernel changes). The curve counts as one observation of each size: on a 2-core VM its ratios move
  10-90% between curves (r(2) = 1.01-1.93 in four curves of one process on an AMD EPYC), so live passes overrule it
  fast. A size never run live is priced UNTRIED_DISCOUNT cheaper when ranking (optimism under uncertainty): a
  candidate within that much of the best runs once and is then priced by what it cost, plain steps included;
- acceptance by depth and by rank: at every position the verifier reached, where its token stood in the drafter's
  top 5 (rank 1: a greedy chain keeps the draft; within the top w: a width-w tree level holds it), and each drafting
  pass's seconds, kept apart for each part of a combined drafter (lookup and head in `ngram+head`).
Expected tokens per call of widths (w_1..w_D) are 1 + sum_d prod_{j<=d} hit_j(w_j) (a chain is widths 1,...,1); a
step costs D drafting passes, the pass over N = nodes + 1 tokens and the step's own bookkeeping (measured, a plain
step's apart); the candidate with the best ratio runs.
Plain decoding (k = 0: no drafts, one token per 1-token pass) is a candidate too: where drafting is expected to cost
more than its guesses save (by over 5%), auto decodes plainly, and after PROBE_EVERY plain steps re-measures the
drafter (a re-measure that finds drafting still losing doubles the wait, up to PROBE_AT_MOST_EVERY): with greedy
drafts and greedy verification by one guess beside a plain step, not verified (the plain step's own pass tells
whether it was the verifier's token, for a drafting pass and no verify row: 2.6 ms against about 13 ms for a 2-token
pass on the AMD EPYC), else by drafting one short block.
Before anything is seen, a drafter's acceptance is what its card measured (a draft head's held-out acceptance by
depth), else FIRST_PRIOR; a part whose drafting pass was never timed drafts k = 1 first, to time it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..records.results import GUESS_PLAN, PLAIN_PLAN, TRIAL_PLAN, Decision, StepResult

CHAIN_LENGTHS = tuple(range(0, 9))  # 0: a plain step
TREE_SHAPES = ("2", "3", "4", "8", "4,2")
MEASURED_PASSES = (1, 2, 3, 4, 5, 7, 9, 13)  # verify pass sizes timed at start; others are interpolated
RANKS = 5  # the records keep the drafter's top 5
PRIOR_WEIGHT = 2.0  # pseudo-observations behind each acceptance estimate, so a few steps do not swing it to 0 or 1
FIRST_PRIOR = 0.4  # rank-1 acceptance assumed at depth 1 before anything is seen
SMOOTHING = 0.2  # weight of the newest step in the running cost scale and drafting pass seconds
PROBE_EVERY = 8  # plain steps in a row after which the drafter is re-measured (a guess, or a block)
PROBE_AT_MOST_EVERY = 32  # a drafter still losing after a re-measure is looked at half as often, down to this
# A plain step only where the best drafting is expected to lose by more than this: closer than that the estimates
# are noise (a pass's cost moves 10-20% between runs on a 2-core VM), and drafting keeps the acceptance current.
PLAIN_MARGIN = 0.95
SURPRISE_CAP = 1.5  # a live pass counts as at most this far from its expected cost
UNTRIED_DISCOUNT = 0.15  # a pass size never run live is ranked this much cheaper: its curve price is that unsure


@dataclass(frozen=True)
class Plan:
    block_size: int  # the chain's k, or the tree's depth
    tree: str | None  # the tree spec, or None for a chain
    expected_tokens: float  # per verifier call
    expected_speedup: float  # expected tokens/s over plain decoding's, both at this run's measured costs
    reason: str  # one line for the screen and the summary
    source: str | None = None  # the part of a combined drafter it was made for (its estimates are kept apart)
    guess: bool = False  # a plain step with one unverified draft beside it, to re-measure the drafter

    @property
    def label(self) -> str:
        return f"tree {self.tree}" if self.tree else f"k={self.block_size}"

    @property
    def plain(self) -> bool:
        return self.block_size == 0


def widths_of(tree: str | None, k: int) -> tuple[int, ...]:
    return tuple(int(w) for w in tree.split(",")) if tree else (1,) * k


def nodes_of(widths: tuple[int, ...]) -> int:
    total, level = 0, 1
    for width in widths:
        level *= width
        total += level
    return total


class VerifyCosts:
    """Seconds of a verify pass of N tokens: the tight-loop curve measured at start, times a running scale (the whole
    machine slower or faster now), times each size's own running correction (a size that keeps costing more than
    its curve said: on the AMD EPYC a 5-row pass cost 73 ms against 50 ms for 4 rows, in chains and trees alike,
    where a noisy start-up curve had them close; one scale for all sizes would never learn that)."""

    def __init__(self, seconds: dict[int, float]):
        self.curve = dict(sorted(seconds.items()))
        self.scale = 1.0
        self.excess: dict[int, float] = {}  # pass size -> its running cost over scale * curve
        self.runs: dict[int, int] = {}  # pass size -> live passes seen

    def base(self, n: int) -> float:
        """The measured curve at n: linear between measured sizes, extended by the last slope past them."""
        sizes = list(self.curve)
        if n in self.curve:
            return self.curve[n]
        lower = max((s for s in sizes if s < n), default=sizes[0])
        upper = min((s for s in sizes if s > n), default=None)
        if upper is None:  # past the largest: extend the last segment's slope
            upper, lower = sizes[-1], sizes[-2] if len(sizes) > 1 else sizes[-1]
        if upper == lower:
            return self.curve[lower]
        t = (n - lower) / (upper - lower)
        return self.curve[lower] + t * (self.curve[upper] - self.curve[lower])

    def __call__(self, n: int) -> float:
        return self.base(n) * self.scale * self.excess.get(n, 1.0)

    def ratio(self, n: int) -> float:
        """r(n): a pass of n tokens in 1-token passes, as the planner now expects them."""
        return self(n) / self(1)

    def tried(self, n: int) -> bool:
        """Whether a pass of n tokens ran live (else its price is the start-up curve's, scaled)."""
        return n in self.runs

    def observe(self, n: int, seconds: float) -> None:
        """A pass of n tokens took `seconds`: what its size's correction does not explain moves the scale, and
        what the scale does not explain moves its size's correction. A size's first live pass says only what that
        size costs (the curve was unsure), so it moves the scale not at all and its correction halfway: the curve
        counts as one pass. Later passes move the scale more, as they can only mean the machine moved."""
        if seconds <= 0:
            return
        # A pass far off its price is mostly the VM (a 2-core VM has 3x spikes): it moves the price as one 1.5x off.
        price = self(n)
        seconds = min(max(seconds, price / SURPRISE_CAP), price * SURPRISE_CAP)
        ratio = seconds / self.base(n)
        excess = self.excess.get(n, 1.0)
        runs = self.runs[n] = self.runs.get(n, 0) + 1
        self.scale += SMOOTHING * (1 - 1 / runs) * (ratio / excess - self.scale)
        self.excess[n] = excess + max(SMOOTHING, 1 / (runs + 1)) * (ratio / self.scale - excess)


class Acceptance:
    """Per depth: how often the verifier's token was the drafter's rank-1..5 candidate, where the verifier got there."""

    def __init__(self, prior: tuple[float, ...] = ()) -> None:
        self.prior = prior  # rank-1 acceptance by depth, where the verifier got there, known before the run (a card)
        self.reached: list[int] = []
        self.at_rank: list[list[int]] = []  # [depth][rank - 1]
        self.plain_run = 0  # plain steps chosen in a row
        self.probe_every = PROBE_EVERY  # plain steps between re-measures now (backs off while drafting keeps losing)

    def observe(self, result: StepResult, planned_plain: bool = False) -> None:
        self.plain_run = self.plain_run + 1 if planned_plain else 0
        if planned_plain:
            if result.guess is not None:  # an unverified guess beside it: depth 1 measured, as a block's would be
                self._count(0, result.guess.rank)
                self.plain_run = 0
            return  # else nothing was drafted because auto chose so: no news about the drafter
        sampling = result.verify_mode == "sampling"
        if not result.drafted and result.positions:  # the drafter had nothing (a lookup miss): a miss at depth 1
            self._count(0, None)
        for depth, position in enumerate(result.positions):
            if position.draft_id is None:
                break  # the bonus slot: nothing drafted there
            if sampling:  # a draw decides, not a rank: count kept drafts as rank 1 (chains only under sampling)
                rank = 1 if position.decision is Decision.ACCEPTED else None
            else:
                ranks = [a.token_id for a in position.draft_top]
                rank = ranks.index(position.verifier_id) + 1 if position.verifier_id in ranks else None
                if rank is None and position.decision is Decision.ACCEPTED:
                    rank = 1  # a drafter without a top list (or a draft outside it) that was kept
            self._count(depth, rank)
            if position.decision is not Decision.ACCEPTED:
                break

    def _count(self, depth: int, rank: int | None) -> None:
        while len(self.reached) <= depth:
            self.reached.append(0)
            self.at_rank.append([0] * RANKS)
        self.reached[depth] += 1
        if rank is not None:
            self.at_rank[depth][rank - 1] += 1

    def hit(self, depth: int, width: int) -> float:
        """P(the verifier's token is among the drafter's top `width` at `depth` (0-based) | the verifier got there)."""
        if width > RANKS:  # beyond the recorded top 5: extend the last rank's gain, no further than certainty
            top, below = self.hit(depth, RANKS), self.hit(depth, RANKS - 1)
            return min(1.0, top + (top - below) * (width - RANKS))
        if depth == 0:  # wider levels catch more, with diminishing returns (from 0.4: top-4 0.64, top-8 0.76)
            prior = 1.0 - (1.0 - (self.prior[0] if self.prior else FIRST_PRIOR)) ** (width ** 0.5)
        else:  # deeper than seen: as deep as seen, falling as the card falls from the depth above (flat: a head's)
            fall = self.prior[depth] / self.prior[depth - 1] if depth < len(self.prior) else 1.0
            prior = min(1.0, self.hit(depth - 1, width) * fall)
        if depth >= len(self.reached):
            return prior
        hits = sum(self.at_rank[depth][:width])
        return (hits + PRIOR_WEIGHT * prior) / (self.reached[depth] + PRIOR_WEIGHT)

    def expected_tokens(self, widths: tuple[int, ...]) -> float:
        total, reach = 1.0, 1.0
        for depth, width in enumerate(widths):
            reach *= self.hit(depth, width)
            total += reach
        return total


@dataclass(frozen=True)
class Option:
    """One shape the planner could run next, priced."""
    speedup: float  # expected tokens/s over plain decoding's, at the expected costs
    hoped_speedup: float  # the same with an untried pass size's price discounted (the ranking's optimism)
    depth: int
    tree: str | None
    tokens: float  # expected per verifier call
    rows: int  # the verify pass's tokens
    untried: bool  # that pass size never ran live

    @property
    def plain(self) -> bool:
        return self.depth == 0

    @property
    def label(self) -> str:
        return f"tree {self.tree}" if self.tree else f"k={self.depth}"

    def score(self, hopeful: bool = True) -> float:
        """What the choice compares: the speed-up (hoped, or at expected costs), a plain step's by PLAIN_MARGIN."""
        return (self.hoped_speedup if hopeful else self.speedup) * (PLAIN_MARGIN if self.plain else 1.0)


class AutoPlanner:
    """Chooses each step's shape; `observe` every step's record to keep its estimates current."""

    def __init__(self, costs: VerifyCosts, chain_lengths=CHAIN_LENGTHS, tree_shapes=TREE_SHAPES,
                 prior_of: Callable[[str | None], tuple[float, ...]] = lambda source: ()):
        self.costs = costs
        self.chains = [(k, None) for k in chain_lengths]
        self.shortest = min(k for k in chain_lengths if k > 0)  # what times a drafting pass, or re-measures
        self.trees = [(len(widths_of(t, 0)), t) for t in tree_shapes]
        self.prior_of = prior_of  # a source's acceptance known before the run (Drafter.acceptance_prior)
        self.by_source: dict[str | None, Acceptance] = {}
        self.drafting_s: dict[str | None, float] = {}  # a source's seconds per drafting pass (a cost: kept by forget)
        # A step's seconds outside its drafting and verify passes, for drafting steps and for plain steps apart: a
        # plain step's records are one column (0.7 ms on the AMD EPYC, against about 1.1 ms for a block's), and the
        # plain loop it competes with has almost none, so one mixed figure would overprice plain steps.
        self.bookkeeping_s: dict[bool, float] = {}  # plain? -> seconds

    def forget_acceptance(self) -> None:
        """Acceptance starts again from the priors (another text); what passes cost on this machine is kept."""
        self.by_source.clear()

    def forget_drafter(self) -> None:
        """Another drafter: its acceptance and its drafting pass's cost are unknown again."""
        self.by_source.clear()
        self.drafting_s.clear()

    def acceptance(self, source: str | None) -> Acceptance:
        if source not in self.by_source:
            self.by_source[source] = Acceptance(self.prior_of(source))
        return self.by_source[source]

    def observe(self, result: StepResult, source: str | None, planned_plain: bool = False) -> None:
        self.costs.observe(result.drafted + 1, result.verify_s)
        self.acceptance(source).observe(result, planned_plain)
        passes = result.depth or (1 if result.guess is not None else 0)  # a guess is one drafting pass
        if passes and result.draft_s >= 0:
            seconds, last = result.draft_s / passes, self.drafting_s.get(source)
            self.drafting_s[source] = seconds if last is None else last + SMOOTHING * (seconds - last)
        other_s = max(0.0, result.step_s - result.draft_s - result.verify_s)  # bookkeeping: paid by every step
        plain = not result.drafted
        last = self.bookkeeping_s.get(plain)
        self.bookkeeping_s[plain] = other_s if last is None else last + SMOOTHING * (other_s - last)

    def bookkeeping(self, plain: bool) -> float:
        """A step's measured seconds outside its passes (the other kind's until this kind has run)."""
        return self.bookkeeping_s.get(plain, self.bookkeeping_s.get(not plain, 0.0))

    def candidates(self, source: str | None, limit: int, trees: bool) -> list[Option]:
        """Every shape that fits, plain steps included, at this run's expected costs."""
        acceptance = self.acceptance(source)
        bookkeeping_s, pass_s = self.bookkeeping(plain=False), self.drafting_s.get(source, 0.0)
        plain_s = self.costs(1) + self.bookkeeping(plain=True)
        options = []
        for depth, tree in self.chains + (self.trees if trees else []):
            if depth <= limit:
                widths = widths_of(tree, depth)
                n = nodes_of(widths) + 1
                tokens = acceptance.expected_tokens(widths)
                verify_s = self.costs(n)
                untried = not self.costs.tried(n)
                hopeful_s = verify_s * (1 - UNTRIED_DISCOUNT) if untried else verify_s
                other_s = self.bookkeeping(plain=True) if depth == 0 else bookkeeping_s
                options.append(Option(
                    speedup=tokens * plain_s / (depth * pass_s + verify_s + other_s),
                    hoped_speedup=tokens * plain_s / (depth * pass_s + hopeful_s + other_s),
                    depth=depth, tree=tree, tokens=tokens, rows=n, untried=untried))
        return options

    def choose(self, source: str | None, limit: int, trees: bool = False, guesses: bool = False) -> Plan:
        """The best chain (or, with `trees`, chain or tree) at most `limit` deep (tokens left, room in the context),
        or a plain step; with `guesses` (greedy drafts and verification) a plain step re-measures the drafter by an
        unverified guess beside it, else by a short block."""
        acceptance = self.acceptance(source)
        who = f" ({source} drafts)" if source else ""
        if limit < 1:
            return Plan(0, None, 1.0, 1.0, "auto: no room to draft", source)
        if source not in self.drafting_s:  # its drafting pass never timed: the cheapest block times it
            k = min(self.shortest, limit)
            return Plan(k, None, acceptance.expected_tokens((1,) * k), 1.0,
                        f"auto: chain k={k}{who}; first, to time its drafting pass", source)
        options = self.candidates(source, limit, trees)
        best = max(options, key=Option.score)
        # Ranked on expected costs alone, would it have won? If not, it runs to be priced live.
        trial = best.untried and best is not max(options, key=lambda option: option.score(hopeful=False))
        if best.plain:
            drafting = max((option for option in options if not option.plain), key=lambda option: option.speedup)
            summary = f"{drafting.label}, expected {drafting.tokens:.1f} tokens/call, {drafting.speedup:.2f}x plain"
            if trial:
                return Plan(0, None, 1.0, 1.0, f"{PLAIN_PLAN}; a 1-token pass {TRIAL_PLAN} "
                            f"(best drafting{who}: {summary})", source)
            if acceptance.plain_run + 1 < acceptance.probe_every:
                return Plan(0, None, 1.0, 1.0, f"{PLAIN_PLAN}; drafting{who} would cost more than it saves "
                            f"(best: {summary})", source)
            # Each re-measure costs (a guess: a drafting pass that feeds the head every plain step's position); one
            # that finds drafting still losing makes the next wait twice as long.
            acceptance.probe_every = min(PROBE_AT_MOST_EVERY, 2 * acceptance.probe_every)
            if guesses:  # the drafter may have got better since: its guess of this token tells, unverified
                return Plan(0, None, 1.0, 1.0, f"{PLAIN_PLAN}; {GUESS_PLAN}, after {acceptance.plain_run} plain "
                            f"steps (best drafting{who}: {summary})", source, guess=True)
            # The drafter may have got better since: one short block to see.
            best = next(option for option in options
                        if option.depth == min(self.shortest, limit) and option.tree is None)
            shape = f"chain k={best.depth}{who}; after {acceptance.plain_run} plain steps, to re-measure"
        else:
            acceptance.probe_every = PROBE_EVERY  # drafting pays again: re-measure at the first rhythm if it stops
            shape = (f"tree {best.tree} at depth {best.depth}" if best.tree else f"chain k={best.depth}") + who
        reason = (f"auto: {shape}; r({best.rows}) = {self.costs.ratio(best.rows):.2f}, expected {best.tokens:.1f} "
                  f"tokens/call, {best.speedup:.2f}x plain")
        if trial:
            reason += f"; a {best.rows}-token pass {TRIAL_PLAN}"
        return Plan(best.depth, best.tree, best.tokens, best.speedup, reason, source)
