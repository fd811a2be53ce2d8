"""The accept rules, one per verification mode, over a tree of drafts (a chain is a tree with one branch; plain
decoding, an empty tree). Used by every step and by the baseline.

Pure functions of tensors, so they can be tested on hand-made p and q.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..drafting.sampling import sample, warp
from ..drafting.tree import ROOT, DraftTree

# Draws the next token after `node` from p, or from the residual after refusing drafts drawn from these q rows.
Draw = Callable[[int, list[torch.Tensor]], int]
EMPTY = DraftTree()  # plain decoding: nothing drafted, the rule only picks the verifier's next token


def residual(p_verifier: torch.Tensor, q_drafter: torch.Tensor) -> torch.Tensor:
    """normalize(max(0, p - q)): where to resample after a rejection so the output is exactly p."""
    r = torch.clamp(p_verifier - q_drafter, min=0.0)
    total = r.sum()
    # p == q up to rounding: a rejection is then (almost) impossible, and p is the right fallback.
    return r / total if total > 1e-12 else p_verifier


def accept_probability(p_of_draft: float, q_of_draft: float) -> float:
    if q_of_draft <= 0.0:
        return 0.0  # cannot happen for a token actually drawn from q; refuse it rather than divide by zero
    return min(1.0, p_of_draft / q_of_draft)


@dataclass(frozen=True)
class TreeVerdict:
    path: tuple[int, ...]  # accepted nodes, depth 1 first
    next_token: int  # the verifier's token after the path: a correction, or a bonus after a leaf
    examined: dict  # node -> (accept probability, draw) for nodes the sampling rule tried; greedy: node -> None

    @property
    def accepted(self) -> int:
        return len(self.path)


def verifier_distribution(config, logits: torch.Tensor) -> torch.Tensor:
    """p_verifier per row: the softmax for greedy verification (shown, not used), the warped one for sampling."""
    if config.verify == "greedy":
        return logits.softmax(dim=-1)
    return warp(logits, config.temperature, config.top_k, config.top_p)


def accept(config, tree: DraftTree, logits: torch.Tensor, generator: torch.Generator,
           p_verifier: torch.Tensor | None = None, draw: Draw | None = None,
           verifier_argmax: list[int] | None = None) -> TreeVerdict:
    """The rule in force (config.verify) over the verifier's logits [1 + nodes, V] for `tree` (`verifier_argmax`:
    their argmax per row, where the caller has it already)."""
    if config.verify == "greedy":
        return accept_greedy(tree, logits.argmax(dim=-1).tolist() if verifier_argmax is None else verifier_argmax)
    p_verifier = verifier_distribution(config, logits) if p_verifier is None else p_verifier
    return accept_sampled(tree, p_verifier, generator, draw)


def accept_greedy(tree: DraftTree, verifier_argmax: list[int]) -> TreeVerdict:
    """Follow the verifier's argmax from the root while a child carries it (for a chain: the longest agreeing prefix).

    `verifier_argmax[0]` is the verifier's token after the root, `verifier_argmax[i + 1]` after node i.
    """
    node, path, examined = ROOT, [], {}
    while True:
        target = verifier_argmax[node + 1]
        children = tree.children(node)
        examined.update({c: None for c in children})
        match = next((c for c in children if tree.ids[c] == target), None)
        if match is None:
            return TreeVerdict(tuple(path), target, examined)
        path.append(match)
        node = match


def accept_sampled(tree: DraftTree, p_rows: torch.Tensor, generator: torch.Generator,
                   draw: Draw | None = None) -> TreeVerdict:
    """Speculative sampling (Leviathan et al. / Chen et al.), recursive over siblings (SpecInfer / EAGLE): the
    emitted tokens are distributed exactly as p.

    At each node on the path, the children are tried in drafting order. Child x, drawn from q (the drafter's
    distribution given the siblings drawn before it), is kept with probability min(1, p(x) / q(x)); after a
    rejection, p becomes the residual normalize(max(0, p - q)) for the next sibling. When every child is refused,
    the next token is drawn from the last residual; after a leaf, from p itself (a bonus). A chain has one child per
    node: keep while u < min(1, p/q), else resample from the residual.

    `draw(node, refused_q)`, where given, draws the next token instead of sampling p or the residual here: for a
    verifier whose rows are not whole distributions (a server's top-N: engine/verification/server_draws.py).
    """
    node, path, examined = ROOT, [], {}
    while True:
        p = p_rows[node + 1]
        kept, refused_q = None, []
        for child in tree.children(node):
            token, q = tree.ids[child], tree.q_rows[child]
            ratio = accept_probability(float(p[token]), float(q[token]))
            u = float(torch.rand((), generator=generator))
            examined[child] = (ratio, u)
            if u < ratio:
                kept = child
                break
            refused_q.append(q)
            p = residual(p, q)
        if kept is None:
            token = draw(node, refused_q) if draw is not None else sample(p, generator)
            return TreeVerdict(tuple(path), token, examined)
        path.append(kept)
        node = kept
