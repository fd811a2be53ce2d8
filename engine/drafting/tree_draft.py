"""Drafting a tree: top-k (or sampled) children per node from a model drafter, one forward per depth.

A model drafter feeds each depth's expanded nodes in one pass over its own KV cache, with a tree mask (each node
sees the context, its ancestors and itself). Which nodes get expanded:
- a static shape (`3,2,1,1`) expands every node at depth d into widths[d] children;
- a dynamic shape (`dynamic:N`, EAGLE-2) expands the DYNAMIC_BRANCH most probable nodes of each depth (by the
  product of the drafter's probabilities along the path) into DYNAMIC_BRANCH children, then keeps the N most
  probable nodes of everything drafted.
The draft head drafts trees the same way through its tree view (engine/drafting/draft_head.py, HeadTreeLM). The n-gram
drafter offers several earlier matches of the context's suffix as branches. Each drafter's `draft_tree`
(engine/drafting/drafters.py, engine/drafting/draft_head.py) calls the function here that fits it.
"""

from __future__ import annotations

import heapq

import torch

from .protocol import DraftKnobs, TreeDraft
from .sampling import ban, banned_by_ngram, one_hot, penalize_repetition, warp
from .tree import ROOT, DraftTree, tree_attention
from .tree_shape import DYNAMIC_BRANCH, TreeShape


def keep_path(lm, draft: TreeDraft, path: tuple[int, ...]) -> None:
    """Compact a drafter's cache `lm` to the context plus the accepted path's rows (those it has fed)."""
    if not draft.rows:
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
    """Up to `width` children: (token, the distribution it was drawn from, its probability, the drafter's own distribution there).

    Top-k children are point masses (a deterministic choice); sampled children are drawn without replacement,
    each from the drafter's distribution with the earlier siblings removed (exact under the sibling rule).
    """
    if not sampled:
        probs = logits.softmax(-1)
        values, tokens = torch.topk(probs, min(width, probs.shape[-1]))
        vocab = probs.shape[-1]
        return [(t, one_hot(t, vocab), v, probs) for v, t in zip(values.tolist(), tokens.tolist())]
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


def model_tree(lm, context: list[int], shape: TreeShape, depth: int, knobs: DraftKnobs,
               generator: torch.Generator) -> TreeDraft:
    """A tree drafted by forward passes of `lm` (a model drafter's stream, or the draft head's tree view)."""
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
            for token, q_row, q_of, probs in _children(logits, seen, width, knobs, sampled, generator):
                new.append(tree.add(token, parent, q_row, q_of, probs))
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


def ngram_tree(context: list[int], vocab: int, max_n: int, min_n: int, shape: TreeShape, depth: int) -> DraftTree:
    """Earlier occurrences of the context's suffix, most recent and longest first, each one branch of a trie."""
    branches = DYNAMIC_BRANCH if shape.dynamic else shape.widths[0]
    budget = shape.budget if shape.dynamic else branches * depth
    tree = DraftTree()
    for continuation in ngram_continuations(context, max_n, depth, branches, min_n):
        node = ROOT
        for token in continuation:
            existing = next((c for c in tree.children(node) if tree.ids[c] == token), None)
            if existing is None:
                if len(tree) >= budget:
                    break
                existing = tree.add(token, node, one_hot(token, vocab), 1.0, None)
            node = existing
    return tree


def ngram_continuations(context: list[int], max_n: int, length: int, count: int, min_n: int = 1) -> list[list[int]]:
    """Up to `count` different continuations copied from earlier matches of the context's suffix (at least `min_n`
    tokens long, as the chain drafter's own lookup). Longest suffix first, then the most recent match first (the
    chain drafter's own first choice comes first).
    """
    found: list[list[int]] = []
    size = len(context)
    for n in range(min(max_n, size - 1), min_n - 1, -1):
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
