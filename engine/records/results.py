"""Frozen records that cross from the engine to its users (the app, the headless run, traces).

Plain Python values only (no tensors), so they can be shown, compared and written as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Decision(str, Enum):
    ACCEPTED = "accepted"  # draft token kept
    REJECTED = "rejected"  # draft token refused: the verifier's token at this position is the correction
    BONUS = "bonus"  # all drafts kept: the verifier's extra token after the block
    PLAIN = "plain"  # nothing was drafted: the verifier decoded this token on its own (a plain decoding step)
    NOT_REACHED = "not_reached"  # after the first rejection, or the bonus slot when bonus tokens are off
    STOPPED = "stopped"  # would have been kept, but the text ended before it (EOS or max_new_tokens)


class Source(str, Enum):
    PROMPT = "prompt"
    DRAFT = "draft"  # an accepted draft token
    CORRECTION = "correction"  # the verifier's token at a rejected position
    BONUS = "bonus"  # the verifier's extra token after a fully accepted block
    PLAIN = "plain"  # the verifier's token in a step with no drafts


@dataclass(frozen=True)
class Alternative:
    token_id: int
    piece: str
    prob: float


@dataclass(frozen=True)
class Position:
    """One column of the step: draft slot i (i < k) or the bonus slot (i == k)."""

    index: int
    draft_id: int | None
    draft_piece: str | None
    q_drafter: float | None  # q of the drafted token under the distribution it was drawn from
    verifier_id: int
    verifier_piece: str
    p_verifier: float  # p of the verifier's own token at this position
    p_verifier_of_draft: float | None  # p the verifier gives the drafted token
    decision: Decision
    accept_prob: float | None = None  # min(1, p/q), sampling verification only
    draw: float | None = None  # the uniform draw compared against accept_prob
    draft_top: tuple[Alternative, ...] = ()
    verifier_top: tuple[Alternative, ...] = ()
    # Sampling verification, at the rejected position: the correction was drawn from normalise(max(0, p - q)).
    residual_prob: float | None = None  # the residual's probability of the correction
    residual_top: tuple[Alternative, ...] = ()
    residual_mass: float | None = None  # sum of max(0, p - q) before normalising: how much of p was left to draw from


@dataclass(frozen=True)
class TreeNode:
    """One drafted node of a tree step."""

    index: int
    token_id: int
    piece: str
    parent: int  # -1: the root (the context's last token)
    depth: int  # 1 = the first drafted position
    q_drafter: float  # the drafter's probability of this token
    p_verifier_of_draft: float  # p the verifier gives this token after its parent
    verifier_id: int  # the verifier's token after this node (argmax; on the path's end, the emitted token)
    verifier_piece: str
    p_verifier: float
    decision: Decision  # ACCEPTED on the path, REJECTED if tried and refused, NOT_REACHED if never tried
    accept_prob: float | None = None  # sampling verification: min(1, p/q) against the residual p
    draw: float | None = None
    draft_top: tuple[Alternative, ...] = ()  # the drafter's top tokens at the parent
    verifier_top: tuple[Alternative, ...] = ()  # the verifier's top tokens after this node


@dataclass(frozen=True)
class TreeStep:
    """A tree step: every node verified in one pass, and the path the verifier accepted."""

    shape: str  # the --tree spec
    nodes: tuple[TreeNode, ...]
    path: tuple[int, ...]  # accepted node indices, depth 1 first
    root_verifier_id: int  # the verifier's token right after the context
    root_verifier_piece: str
    root_p_verifier: float
    root_verifier_top: tuple[Alternative, ...] = ()

    @property
    def depth(self) -> int:
        return max((n.depth for n in self.nodes), default=0)

    def children(self, index: int) -> tuple[TreeNode, ...]:
        return tuple(n for n in self.nodes if n.parent == index)

    def drawn_order(self) -> tuple[int, ...]:
        """Node indices depth first, children in drafting order: the order the app draws and selects them in."""
        order: list[int] = []

        def walk(parent: int) -> None:
            for node in self.children(parent):
                order.append(node.index)
                walk(node.index)

        walk(-1)
        return tuple(order)

    def verifier_before(self, node: TreeNode) -> tuple[int, str, float, tuple[Alternative, ...]]:
        """The verifier's token, piece, p and top tokens at the node's slot: after its parent (or the context)."""
        if node.parent == -1:
            return self.root_verifier_id, self.root_verifier_piece, self.root_p_verifier, self.root_verifier_top
        parent = self.nodes[node.parent]
        return parent.verifier_id, parent.verifier_piece, parent.p_verifier, parent.verifier_top


@dataclass(frozen=True)
class Token:
    token_id: int
    piece: str
    source: Source


PLAIN_PLAN = "auto: plain step"  # how a plan that chose not to draft begins (engine/planning/auto_plan.py)
TRIAL_PLAN = "never ran here: once, to price it live"  # in a plan run to time a pass size it had only estimated
GUESS_PLAN = "an unverified guess beside it, to re-measure"  # a plain step that carries a Guess


@dataclass(frozen=True)
class Guess:
    """A plain step auto chose can carry one draft beside it, not verified: the drafter's guess of the token the
    verifier then produced, to keep its acceptance current for the price of a drafting pass (no verify row)."""
    source: str | None  # the part of a combined drafter that guessed ("lookup" or "head"), or None
    token_id: int | None  # None: the drafter had nothing to guess (lookup without a match), a miss
    piece: str
    rank: int | None  # the verifier's token in the drafter's top 5 (1: the guess itself), None: outside them


@dataclass(frozen=True)
class StepResult:
    step: int  # 1-based
    block_size: int  # k asked for
    drafted: int  # tokens actually drafted (fewer near the end, or none from ngram without a match)
    accepted: int
    positions: tuple[Position, ...]
    emitted: tuple[Token, ...]
    draft_s: float
    verify_s: float
    step_s: float
    verifier_calls: int
    draft_mode: str
    verify_mode: str
    finish_reason: str | None = None  # "eos", "max_new_tokens", "context_window"
    tree: TreeStep | None = None  # tree steps only: every node; `positions` then show the accepted path
    drafted_by: str | None = None  # a combined drafter's part that drafted ("lookup" or "head" for ngram+head)
    plan: str | None = None  # the auto schedule's choice for this step and why (engine/planning/auto_plan.py)
    cpu_busy: str | None = None  # why this step's timings are unreliable (another process busy), or None
    server_draws: int = 0  # sampling against a server: its samples tried for the correction (server_draws.py)
    draw_note: str | None = None  # how a correction was drawn when the server's samples ran out (or NOT exact)
    guess: Guess | None = None  # a plain step's unverified draft, to re-measure the drafter (auto only)

    @property
    def emitted_text(self) -> str:
        return "".join(t.piece for t in self.emitted)

    @property
    def depth(self) -> int:
        """Draft positions: k for a chain, the tree's depth for a tree (which drafts more nodes than that)."""
        return self.tree.depth if self.tree is not None else self.drafted

    @property
    def planned_plain(self) -> bool:
        """Auto chose not to draft this step (as opposed to a drafter that had nothing, or no room left)."""
        return bool(self.plan) and self.plan.startswith(PLAIN_PLAN)

    @property
    def planned_trial(self) -> bool:
        """Auto chose this shape once to time its verify pass, which it had priced from the start-up curve alone."""
        return bool(self.plan) and TRIAL_PLAN in self.plan


@dataclass(frozen=True)
class Stats:
    steps: int = 0
    drafted: int = 0
    accepted: int = 0
    new_tokens: int = 0
    verifier_calls: int = 0
    wall_s: float = 0.0
    draft_s: float = 0.0
    verify_s: float = 0.0
    per_position_drafted: tuple[int, ...] = ()
    per_position_accepted: tuple[int, ...] = ()
    accepted_per_step: tuple[int, ...] = ()
    tree_steps: int = 0  # steps that verified a tree (their `drafted` counts every node)
    busy_steps: int = 0  # steps taken while the CPU was busy with other processes (their timings are unreliable)

    @property
    def nodes_per_step(self) -> float:
        """Drafted tokens the verifier checks per pass: k for chains, the node count for trees."""
        return self.drafted / self.steps if self.steps else 0.0

    @property
    def mean_accepted(self) -> float:
        """Accepted drafts per step: for a tree, the accepted path's length."""
        return self.accepted / self.steps if self.steps else 0.0

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.drafted if self.drafted else 0.0

    @property
    def mean_tokens_per_step(self) -> float:
        return self.new_tokens / self.steps if self.steps else 0.0

    @property
    def tokens_per_verifier_call(self) -> float:
        return self.new_tokens / self.verifier_calls if self.verifier_calls else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def draft_ms_per_token(self) -> float | None:
        return 1000 * self.draft_s / self.drafted if self.drafted else None

    @property
    def verify_ms_per_step(self) -> float | None:
        return 1000 * self.verify_s / self.verifier_calls if self.verifier_calls else None

    @property
    def per_position_acceptance(self) -> tuple[float, ...]:
        """Share of steps that drafted position i in which position i was accepted."""
        return tuple(a / d if d else 0.0 for a, d in zip(self.per_position_accepted, self.per_position_drafted))

    def with_step(self, result: StepResult) -> "Stats":
        """Stats after one more step; the one place where stats are accumulated (engine and replay alike)."""
        # Per draft position (a tree's depth): did the step draft it, and keep it?
        k = max(len(self.per_position_drafted), result.depth)
        drafted_at = list(self.per_position_drafted) + [0] * (k - len(self.per_position_drafted))
        accepted_at = list(self.per_position_accepted) + [0] * (k - len(self.per_position_accepted))
        for i in range(result.depth):
            drafted_at[i] += 1
            if i < result.accepted:
                accepted_at[i] += 1
        return Stats(
            steps=self.steps + 1,
            drafted=self.drafted + result.drafted,
            accepted=self.accepted + result.accepted,
            new_tokens=self.new_tokens + len(result.emitted),
            verifier_calls=self.verifier_calls + result.verifier_calls,
            wall_s=self.wall_s + result.step_s,
            draft_s=self.draft_s + result.draft_s,
            verify_s=self.verify_s + result.verify_s,
            per_position_drafted=tuple(drafted_at),
            per_position_accepted=tuple(accepted_at),
            accepted_per_step=self.accepted_per_step + (result.accepted,),
            tree_steps=self.tree_steps + (result.tree is not None),
            busy_steps=self.busy_steps + (result.cpu_busy is not None),
        )

    @classmethod
    def from_steps(cls, steps) -> "Stats":
        stats = cls()
        for result in steps:
            stats = stats.with_step(result)
        return stats

    def summary(self) -> dict:
        return {
            "steps": self.steps,
            "drafted": self.drafted,
            "accepted": self.accepted,
            "acceptance_rate": self.acceptance_rate,
            "new_tokens": self.new_tokens,
            "mean_tokens_per_step": self.mean_tokens_per_step,
            "per_position_acceptance": list(self.per_position_acceptance),
            "verifier_calls": self.verifier_calls,
            "tokens_per_verifier_call": self.tokens_per_verifier_call,
            "nodes_per_step": self.nodes_per_step,
            "mean_accepted": self.mean_accepted,
            "tree_steps": self.tree_steps,
            "busy_steps": self.busy_steps,
            "wall_s": self.wall_s,
            "tokens_per_s": self.tokens_per_s,
            "draft_s": self.draft_s,
            "verify_s": self.verify_s,
            "draft_ms_per_token": self.draft_ms_per_token,
            "verify_ms_per_step": self.verify_ms_per_step,
        }


@dataclass(frozen=True)
class BaselineResult:
    """Plain autoregressive decoding with the verifier alone (KV cache, same knobs)."""

    token_ids: tuple[int, ...]
    text: str  # prompt plus generated text
    generated_text: str
    new_tokens: int
    wall_s: float
    finish_reason: str

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.wall_s if self.wall_s > 0 else 0.0


@dataclass(frozen=True)
class SpeedCheck:
    """Speculative and plain decoding of one prompt, each timed in a tight loop with nothing between the steps.

    Live stepping (a key per step, auto-play's pauses) leaves the CPU idle between steps, and a step taken after an
    idle pause runs slower (caches and clocks go cold: docs/benchmarks.md), so live tokens/s is no speed-up.
    """

    plain: BaselineResult
    speculative_token_ids: tuple[int, ...]  # the generated tokens of the tight run
    stats: Stats  # the tight run's own counts and times: its c and r are not inflated by idle pauses
    busy: str | None = None  # why the two runs are not comparable (other processes used the CPU during one), or None

    @property
    def speculative_tokens_per_s(self) -> float:
        return self.stats.tokens_per_s

    @property
    def plain_step_s(self) -> float | None:
        """One plain decoding step timed in the same tight loop: the unit of the tight run's c and r."""
        return self.plain.wall_s / self.plain.new_tokens if self.plain.new_tokens else None

    @property
    def speedup(self) -> float:
        base = self.plain.tokens_per_s
        return self.speculative_tokens_per_s / base if base else 0.0


@dataclass(frozen=True)
class Comparison:
    """Speculative output against the baseline, over the tokens both produced."""

    lossless: bool
    compared_tokens: int
    first_difference: int | None
    speedup: float
    baseline: BaselineResult = field(repr=False)
