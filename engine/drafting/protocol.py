"""What the decode loop needs from a drafter, and the pieces every drafter shares.

The loop (engine/session.py) always drafts a tree: a chain is a tree with one branch. A drafter that proposes chains
only gets `draft_tree` from `BaseDrafter` (its chain as a one-branch tree); model drafters, the head, lookup and
`ngram+head` draft real trees (engine/drafting/tree_draft.py). Nothing in the loop asks a drafter what it is: it calls these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Protocol

import torch

from .sampling import ban, banned_by_ngram, one_hot, penalize_repetition, sample, warp
from .tree import ROOT, DraftTree

if TYPE_CHECKING:
    from .tree_shape import TreeShape


@dataclass(frozen=True)
class DraftKnobs:
    sampled: bool
    temperature: float
    top_k: int
    top_p: float
    repetition_penalty: float
    no_repeat_ngram_size: int
    stop_below: float = 0.0  # end the block after a draft the drafter itself gave less than this (0: never)


@dataclass(frozen=True)
class Proposal:
    ids: list[int]
    q_drafter: torch.Tensor | None  # [k, V]: the distribution each draft was drawn from (point mass if greedy)
    drafter_probs: torch.Tensor | None  # [k, V]: the drafter's own probabilities, shown as its top alternatives
    source: str | None = None  # which part of a combined drafter (ngram+head) drafted this block


NO_PROPOSAL = Proposal([], None, None)


@dataclass
class TreeDraft:
    """What a drafter hands the loop: the tree, and where its rows sit in the drafter's own cache."""

    tree: DraftTree
    cached: int = 0  # the drafter cache's length before the tree's rows (0 for drafters without a cache)
    rows: dict = field(default_factory=dict)  # node -> its row in the drafter's cache (only fed nodes)
    source: str | None = None  # which part of a combined drafter drafted it (as Proposal.source)


def chain_tree(proposal: Proposal) -> TreeDraft:
    """A chain proposal as a one-branch tree: node i's parent is node i - 1."""
    tree, parent = DraftTree(), ROOT
    for i, token in enumerate(proposal.ids):
        probs = proposal.drafter_probs[i] if proposal.drafter_probs is not None else None
        q_of = float((probs if probs is not None else proposal.q_drafter[i])[token])  # as the draft row shows it
        parent = tree.add(token, parent, proposal.q_drafter[i], q_of, probs)
    return TreeDraft(tree, source=proposal.source if proposal.ids else None)


class Drafter(Protocol):
    """What the decode loop needs from a drafter. Positions are counted in tokens of the context."""

    name: str
    shares_verifier_weights: bool  # no second copy of the verifier's weights (same, early-exit, ngram, head)
    reads_verifier_features: bool  # wants the verifier's hidden states through `observe`
    tap_layers: tuple[int, ...]  # verifier layers whose inputs `observe` also wants (EAGLE-3 fused features)

    def reset(self, context: list[int]) -> None:
        """Start over on a new context (the prompt)."""

    def propose(self, context: list[int], k: int, knobs: DraftKnobs, generator: torch.Generator) -> Proposal:
        """Up to k draft tokens continuing `context` (fewer, or none, when the drafter has nothing to offer)."""

    def draft_tree(self, context: list[int], shape: "TreeShape", depth: int, knobs: DraftKnobs,
                   generator: torch.Generator) -> TreeDraft:
        """A tree of drafts at most `depth` deep, shaped by `shape`."""

    def keep_path(self, draft: TreeDraft, path: tuple[int, ...]) -> None:
        """After the verifier chose `path` in `draft`: keep only those rows in the drafter's own cache."""

    def rollback(self, length: int) -> None:
        """Forget any state past the first `length` tokens of the context (after a rejection)."""

    def observe(self, start: int, hidden: torch.Tensor) -> None:
        """The verifier's final hidden states (before its final norm) for positions start, start + 1, ..."""

    def source_for(self, context: list[int]) -> str | None:
        """Which part of a combined drafter will draft after `context` (its acceptance is its own); None if one."""

    def acceptance_prior(self, source: str | None) -> tuple[float, ...]:
        """What this drafter (or its `source` part) is known to reach: by depth, the share of drafts the verifier
        kept where it got there, measured when it was made (a draft head's card); () where nothing is known."""


class BaseDrafter:
    """The defaults of the protocol: no cache to manage, no features wanted, trees drafted as a chain."""

    shares_verifier_weights = True
    reads_verifier_features = False
    tap_layers: tuple[int, ...] = ()

    def reset(self, context: list[int]) -> None:
        pass

    def rollback(self, length: int) -> None:
        pass

    def observe(self, start: int, hidden: torch.Tensor) -> None:
        pass

    def source_for(self, context: list[int]) -> str | None:
        return None

    def acceptance_prior(self, source: str | None) -> tuple[float, ...]:
        return ()

    def draft_tree(self, context: list[int], shape: "TreeShape", depth: int, knobs: DraftKnobs,
                   generator: torch.Generator) -> TreeDraft:
        return chain_tree(self.propose(context, depth, knobs, generator))

    def keep_path(self, draft: TreeDraft, path: tuple[int, ...]) -> None:
        pass


def draft_chain(logits: torch.Tensor, advance: Callable[[int, int], torch.Tensor], context: list[int], k: int,
                knobs: DraftKnobs, generator: torch.Generator) -> Proposal:
    """Up to k drafts, each chosen from `logits`, then `advance(i, token)` gives the logits after draft i.

    The chain ends early after a draft the drafter gave less than knobs.stop_below (--draft-confidence): the drafts
    after it would rarely be kept, and each costs a row. The stop depends only on drafts made, so both
    verifications stay exact.
    """
    ids: list[int] = []
    q_rows, probs_rows = [], []
    for i in range(k):
        token, q, probs = choose(logits, context + ids, knobs, generator)
        ids.append(token)
        q_rows.append(q)
        probs_rows.append(probs)
        if float(probs[token]) < knobs.stop_below:
            break
        if i < k - 1:
            logits = advance(i, token)
    return Proposal(ids, torch.stack(q_rows), torch.stack(probs_rows))


def choose(logits: torch.Tensor, seen: list[int], knobs: DraftKnobs, generator: torch.Generator):
    """One draft token from logits [V]: (token, q it was drawn from, the drafter's own probabilities)."""
    if knobs.sampled:
        scores = penalize_repetition(logits, seen, knobs.repetition_penalty)
        banned = ban(scores, banned_by_ngram(seen, knobs.no_repeat_ngram_size))
        # With a tiny vocabulary the n-gram ban can remove everything: then ignore it.
        scores = banned if torch.isfinite(banned).any() else scores
        q = warp(scores, knobs.temperature, knobs.top_k, knobs.top_p)
        return sample(q, generator), q, q
    token = int(logits.argmax())
    return token, one_hot(token, logits.shape[-1]), logits.softmax(-1)
