"""Drafting a tree: top-k (or sampled) children per node from a model drafter, one forward per depth.

A model drafter feeds each depth's expanded nodes in one pass over its own KV cache, with a tree mask (each node
sees the context, its ancestors and itself). Which nodes get expanded:
- a static shape (`3,2,1,1`) expands every node at depth d into widths[d] children;
- a dynamic shape (`dynamic:N`, EAGLE-2) expands the DYNAMIC_BRANCH most probable nodes of each depth (by the
  product of the drafter's probabilities along the path) into DYNAMIC_BRANCH children, then keeps the N most
  probable nodes of everything drafted.
The draft head drafts trees the same way through its tree view (engine/draft_head.py, HeadTreeLM). The n-gram
drafter offers several earlier matches of the context's suffix as branches.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field

import torch

from .drafters import DraftKnobs, NgramDrafter
from .sampling import ban, banned_by_ngram, one_hot, penalize_repetition, warp
from .tree import ROOT, DraftTree, tree_attention
from .tree_shape import DYNAMIC_BRANCH, TreeShape


@dataclass
class TreeDraft:
    tree: DraftTree
    cached: int = 0  # the drafter cache's length before the tree's rows (0 for drafters without a cache)
    rows: dict = field(default_factory=dict)  # node -> its row in the drafter's cache (only fed nodes)
    source: str | None = None  # which part of a combined drafter drafted it (as Proposal.source)


def draft_tree(drafter, context: list[int], shape: TreeShape, depth: int, knobs: DraftKnobs,
               generator: torch.Generator) -> TreeDraft:
    start = time.perf_counter()
    source = None
    if hasattr(drafter, "pick"):  # ngram+head: the lookup's branches, else the head's tree
        combined, drafter = drafter, drafter.pick(context)
        source = combined.source(drafter)
    if depth <= 0 or not getattr(drafter, "ready", lambda _: True)(context):
        draft = TreeDraft(DraftTree())
    elif isinstance(drafter, NgramDrafter):
        draft = TreeDraft(_ngram_tree(drafter, context, shape, depth))
    elif _tree_lm(drafter) is not None:
        draft = _model_tree(_tree_lm(drafter), context, shape, depth, knobs, generator)
    else:
        draft = TreeDraft(_chain_as_tree(drafter, context, depth, knobs, generator))
    draft.tree.seconds = time.perf_counter() - start
    draft.source = source if len(draft.tree) else None
    return draft


def _tree_lm(drafter):
    """What drafts a tree by forward passes: a model drafter's language model, or the draft head's tree view."""
    return getattr(drafter, "tree_lm", None) or getattr(drafter, "lm", None)


def keep_path(drafter, draft: TreeDraft, path: tuple[int, ...]) -> None:
    """Compact the drafter's cache to the context plus the accepted path's rows (those it has fed)."""
    lm = _tree_lm(drafter)
    if lm is None or not draft.rows:
        return
    rows = []
    for node in path:
        if node not in draft.rows:
            break  # deeper path nodes were never fed (leaves are drafted, not fed)
        rows.append(draft.rows[node])
    lm.compact(draft.cached, rows)


# ---- model drafters -----------------------------------------------------------------------------------------


def _children(logits: torch.Tensor, seen: list[int], width: int, knobs: DraftKnobs, sampled: bool,
              generator: torch.Generator) -> list[tuple[int, torch.Tensor, float, torch.Tensor]]:
    """Up to `width` children: (token, the distribution it was drawn from, its probability, what to show).

    Top-k children are point masses (a deterministic choice); sampled children are drawn without replacement,
    each from the drafter's distribution with the earlier siblings removed (exact under the sibling rule).
    """
    if not sampled:
        shown = logits.softmax(-1)
        values, tokens = torch.topk(shown, min(width, shown.shape[-1]))
        vocab = shown.shape[-1]
        return [(t, one_hot(t, vocab), v, shown) for v, t in zip(values.tolist(), tokens.tolist())]
    scores = penalize_repetition(logits, seen, knobs.repetition_penalty)
    banned = ban(scores, banned_by_ngram(seen, knobs.no_repeat_ngram_size))
    scores = banned if torch.isfinite(banned).any() else scores  # a tiny vocabulary can be banned away entirely
    q = warp(scores, knobs.temperature, knobs.top_k, knobs.top_p)
    out, remaining = [], q.clone()
    for _ in range(width):
        total = float(remaining.sum())
        if total <= 1e-12:
            break  # top-k / top-p left fewer candidates than the width
        drawn_from = remaining / total
        token = int(torch.multinomial(drawn_from, 1, generator=generator))
        out.append((token, drawn_from, float(q[token]), q))
        remaining = remaining.clone()
        remaining[token] = 0.0
    return out


def _model_tree(lm, context: list[int], shape: TreeShape, depth: int, knobs: DraftKnobs,
                generator: torch.Generator) -> TreeDraft:
    # Dynamic trees rank nodes by probability, so their children must be the deterministic top-k (EAGLE-2): a
    # sampled child kept or dropped for its own value would bias the sibling rule.
    sampled = knobs.sampled and not shape.dynamic
    tree, cumulative = DraftTree(), []
    root_logits = lm.catch_up(context)[-1]
    draft = TreeDraft(tree, cached=lm.length)
    expand = [(ROOT, root_logits)]
    for level in range(depth):
        width = DYNAMIC_BRANCH if shape.dynamic else shape.widths[level]
        new = []
        for parent, logits in expand:
            path = tree.path_to(parent)
            seen = context + [tree.ids[n] for n in path]
            base = cumulative[parent] if parent != ROOT else 1.0
            for token, q_row, q_of, shown in _children(logits, seen, width, knobs, sampled, generator):
                new.append(tree.add(token, parent, q_row, q_of, shown))
                cumulative.append(base * q_of)
        if level == depth - 1 or not new:
            break
        if shape.dynamic:
            new = sorted(new, key=lambda n: -cumulative[n])[:DYNAMIC_BRANCH]
        expand = list(zip(new, _feed(lm, tree, draft, new)))
    if shape.dynamic and len(tree) > shape.budget:
        keep = _most_probable(tree, cumulative, shape.budget)
        renumber = {old: new for new, old in enumerate(sorted(keep))}
        draft.rows = {renumber[n]: row for n, row in draft.rows.items() if n in renumber}
        draft.tree = tree.select(keep)
    return draft


def _feed(lm, tree: DraftTree, draft: TreeDraft, nodes: list[int]) -> list[torch.Tensor]:
    """One drafter forward over `nodes` (their ancestors already fed); returns each node's next-token logits."""
    first_row = lm.length
    ancestors = [[draft.rows[a] for a in tree.path_to(n)[:-1]] for n in nodes]
    positions = [draft.cached - 1 + len(tree.path_to(n)) for n in nodes]
    mask = tree_attention(ancestors, draft.cached, first_row)
    logits = lm.extend([tree.ids[n] for n in nodes], keep=len(nodes), positions=positions, mask=mask)
    for i, node in enumerate(nodes):
        draft.rows[node] = first_row + i
    return list(logits)


def _most_probable(tree: DraftTree, cumulative: list[float], budget: int) -> list[int]:
    """The `budget` most probable nodes, each with its parent and its earlier siblings (so the set is a tree)."""
    chosen: list[int] = []
    eligible = [(-cumulative[c], c) for c in tree.children(ROOT)[:1]]
    while eligible and len(chosen) < budget:
        _, node = heapq.heappop(eligible)
        chosen.append(node)
        siblings = tree.children(tree.parents[node])
        following = siblings.index(node) + 1
        candidates = tree.children(node)[:1] + siblings[following : following + 1]
        for c in candidates:
            heapq.heappush(eligible, (-cumulative[c], c))
    return chosen


# ---- other drafters -----------------------------------------------------------------------------------------


def _ngram_tree(drafter: NgramDrafter, context: list[int], shape: TreeShape, depth: int) -> DraftTree:
    """Earlier occurrences of the context's suffix, most recent and longest first, each one branch of a trie."""
    branches = DYNAMIC_BRANCH if shape.dynamic else shape.widths[0]
    budget = shape.budget if shape.dynamic else branches * depth
    tree = DraftTree()
    vocab = drafter.vocab_size
    for continuation in ngram_continuations(context, drafter.max_n, depth, branches):
        node = ROOT
        for token in continuation:
            existing = next((c for c in tree.children(node) if tree.ids[c] == token), None)
            if existing is None:
                if len(tree) >= budget:
                    break
                existing = tree.add(token, node, one_hot(token, vocab), 1.0, None)
            node = existing
    return tree


def ngram_continuations(context: list[int], max_n: int, length: int, count: int) -> list[list[int]]:
    """Up to `count` different continuations copied from earlier matches of the context's suffix.

    Longest suffix first, then the most recent match first (the chain drafter's own first choice comes first).
    """
    found: list[list[int]] = []
    size = len(context)
    for n in range(min(max_n, size - 1), 0, -1):
        suffix = context[size - n :]
        for start in range(size - n - 1, -1, -1):
            if context[start : start + n] != suffix:
                continue
            extended = list(context)
            for i in range(length):  # overlapping copy (like LZ77): a repeat can continue into itself
                extended.append(extended[start + n + i])
            continuation = extended[size:]
            if continuation not in found:
                found.append(continuation)
                if len(found) == count:
                    return found
    return found


def _chain_as_tree(drafter, context: list[int], depth: int, knobs: DraftKnobs, generator) -> DraftTree:
    """A drafter with no tree support of its own drafts a chain: a tree with one branch."""
    proposal = drafter.propose(context, depth, knobs, generator)
    tree, parent = DraftTree(), ROOT
    for i, token in enumerate(proposal.ids):
        shown = proposal.shown[i] if proposal.shown is not None else None
        q_of = float((shown if shown is not None else proposal.q_drafter[i])[token])  # as the chain's draft row shows it
        parent = tree.add(token, parent, proposal.q_drafter[i], q_of, shown)
    return tree
