"""One tree step of a session: draft a tree -> verify every node in one pass -> accept a path -> compact caches.

The session calls `tree_step` instead of its chain phases when `SpecConfig.tree` is set. Both caches end up
holding exactly the context plus the accepted path's rows (copied, not recomputed).
"""

from __future__ import annotations

import time

import torch

from .errors import EngineError
from .positions import top_alternatives, top_alternatives_rows
from .results import Decision, Position, Source, StepResult, Token, TreeNode, TreeStep
from .sampling import warp
from .tree import ROOT, DraftTree, TreeVerdict, accept_tree_greedy, accept_tree_sampled, verify_inputs
from .tree_draft import TreeDraft, draft_tree, keep_path
from .tree_shape import TreeShape


def verify_tree(verifier_lm, context: list[int], tree: DraftTree) -> torch.Tensor:
    """One verifier pass over [context tokens the cache lacks] + every node: logits [1 + nodes, V].

    Row 0 is the verifier's prediction after the context, row i + 1 its prediction after node i.
    """
    cached = verifier_lm.length
    pending = list(context[cached:])
    if not len(tree):
        return verifier_lm.extend(pending, keep=1)
    tokens, mask, positions = verify_inputs(tree, pending, cached)
    return verifier_lm.extend(tokens, keep=len(tree) + 1, positions=positions, mask=mask)


def _show_path_features(verifier_lm, drafter, pending: int, path) -> None:
    """A drafter that reads the verifier's hidden states (the draft head) gets those of the context and the path."""
    if not getattr(drafter, "reads_verifier_features", False):
        return
    if verifier_lm.hidden is None:
        raise EngineError(f"the {drafter.name} drafter needs the verifier's hidden states, which this model does not expose")
    rows = list(range(pending)) + [pending + n for n in path]
    drafter.observe(verifier_lm.hidden_start, verifier_lm.hidden[rows])


def accept_tree(config, tree: DraftTree, logits: torch.Tensor, generator: torch.Generator):
    """The verdict, the verifier's distributions (per row) and its token after each row."""
    argmax = logits.argmax(dim=-1).tolist()
    if config.verify == "greedy":
        return accept_tree_greedy(tree, argmax), logits.softmax(dim=-1), argmax
    p_rows = warp(logits, config.temperature, config.top_k, config.top_p)
    return accept_tree_sampled(tree, p_rows, generator), p_rows, argmax


def tree_step(session, shape: TreeShape, depth: int, start: float) -> StepResult:
    """Run one tree step on `session` (its caches, tokens, stats) and return the step's record."""
    context = session.tokens
    draft: TreeDraft = draft_tree(session.drafter, context, shape, depth, session._knobs(), session.generator)
    tree = draft.tree
    drafted = time.perf_counter()
    cached = session.verifier_lm.length
    logits = verify_tree(session.verifier_lm, context, tree)
    verified = time.perf_counter()
    verdict, p_rows, argmax = accept_tree(session.config, tree, logits, session.generator)
    _show_path_features(session.verifier_lm, session.drafter, len(context) - cached, verdict.path)

    path = list(verdict.path)
    at_leaf = not tree.children(path[-1] if path else ROOT)
    next_token = None if (at_leaf and path and not session.config.bonus) else verdict.next_token
    emitted_ids = [tree.ids[n] for n in path] + ([next_token] if next_token is not None else [])
    emitted_ids, finish_reason = session._cut_at_end(context, emitted_ids)

    # Keep exactly the context and the accepted path in both caches, then cut to what was emitted.
    session.verifier_lm.compact(len(context), [len(context) + n for n in path])
    keep_path(session.drafter, draft, verdict.path)
    session.tokens = context + emitted_ids
    session.verifier_lm.rollback(len(session.tokens) - 1)
    session.drafter.rollback(len(session.tokens) - 1)

    record = _tree_record(session, shape, context, tree, verdict, p_rows, argmax, next_token, len(emitted_ids))
    positions = _path_positions(record, verdict, next_token, len(emitted_ids))
    accepted = min(len(path), len(emitted_ids))
    sources = [Source.DRAFT] * len(path) + [Source.BONUS if at_leaf else Source.CORRECTION]
    pieces = [record.nodes[n].piece for n in path] + [_after_path(record, path).verifier_piece]
    emitted = tuple(Token(t, piece, src) for t, piece, src in zip(emitted_ids, pieces, sources))
    session.finish_reason = finish_reason
    return session.record(depth, len(tree), accepted, positions, emitted, (start, drafted, verified), finish_reason,
                          tree=record, drafted_by=draft.source)


# ---- the frozen record --------------------------------------------------------------------------------------


def _tree_record(session, shape, context, tree: DraftTree, verdict: TreeVerdict, p_rows, argmax,
                 next_token, n_emitted: int) -> TreeStep:
    decoder = session.decoder
    on_path = {node: i for i, node in enumerate(verdict.path)}
    last = verdict.path[-1] if verdict.path else ROOT
    # The verifier's token after each row: its argmax, except after the path, where it is the emitted token.
    chosen = list(argmax)
    if next_token is not None:
        chosen[last + 1] = next_token
    verifier_tops = top_alternatives_rows(decoder, p_rows)
    draft_tops = {}  # siblings share their parent's distribution: one topk each
    nodes = []
    for node in range(len(tree)):
        shown = tree.shown[node]
        if id(shown) not in draft_tops:
            draft_tops[id(shown)] = top_alternatives(decoder, shown)
        path_ids = [tree.ids[n] for n in tree.path_to(node)]
        parent = tree.parents[node]
        token, verifier_id = tree.ids[node], chosen[node + 1]
        if node in on_path:
            decision = Decision.ACCEPTED if on_path[node] < n_emitted else Decision.STOPPED
        elif node in verdict.examined:
            decision = Decision.REJECTED
        else:
            decision = Decision.NOT_REACHED
        tried = verdict.examined.get(node)
        nodes.append(
            TreeNode(
                index=node,
                token_id=token,
                piece=decoder.piece(context + path_ids[:-1], token),
                parent=parent,
                depth=len(path_ids),
                q_drafter=tree.q_of[node],
                p_verifier_of_draft=float(p_rows[parent + 1][token]),
                verifier_id=verifier_id,
                verifier_piece=decoder.piece(context + path_ids, verifier_id),
                p_verifier=float(p_rows[node + 1][verifier_id]),
                decision=decision,
                accept_prob=tried[0] if tried else None,
                draw=tried[1] if tried else None,
                draft_top=draft_tops[id(shown)],
                verifier_top=verifier_tops[node + 1],
            )
        )
    root_id = chosen[0]
    return TreeStep(
        shape=shape.spec,
        nodes=tuple(nodes),
        path=tuple(verdict.path),
        root_verifier_id=root_id,
        root_verifier_piece=decoder.piece(context, root_id),
        root_p_verifier=float(p_rows[0][root_id]),
        root_verifier_top=verifier_tops[0],
    )


class _Root:
    """The root as a node-like record (the verifier's token right after the context)."""

    def __init__(self, record: TreeStep):
        self.verifier_id = record.root_verifier_id
        self.verifier_piece = record.root_verifier_piece
        self.p_verifier = record.root_p_verifier
        self.verifier_top = record.root_verifier_top


def _after_path(record: TreeStep, path: list[int]):
    return record.nodes[path[-1]] if path else _Root(record)


def _path_positions(record: TreeStep, verdict: TreeVerdict, next_token, n_emitted: int) -> tuple[Position, ...]:
    """The chain view of a tree step: the accepted path, then the first sibling refused there (or the bonus)."""
    positions = []
    parent_of = lambda i: record.nodes[verdict.path[i - 1]] if i else _Root(record)  # noqa: E731
    for i, node_index in enumerate(verdict.path):
        node = record.nodes[node_index]
        positions.append(_position(i, node, parent_of(i), node.decision))
    i = len(verdict.path)
    after = _after_path(record, list(verdict.path))
    refused = record.children(verdict.path[-1] if verdict.path else -1)
    if refused:
        positions.append(_position(i, refused[0], after, Decision.REJECTED))
    else:
        decision = Decision.BONUS if next_token is not None else Decision.NOT_REACHED
        if next_token is not None and n_emitted <= len(verdict.path):
            decision = Decision.STOPPED  # the text ended on the path, before the bonus
        positions.append(
            Position(index=i, draft_id=None, draft_piece=None, q_drafter=None, verifier_id=after.verifier_id,
                     verifier_piece=after.verifier_piece, p_verifier=after.p_verifier, p_verifier_of_draft=None,
                     decision=decision, verifier_top=after.verifier_top)
        )
    return tuple(positions)


def _position(i: int, node: TreeNode, parent, decision: Decision) -> Position:
    """Column i: `node` drafted there; the verifier's token at that column is its choice after `parent`."""
    return Position(
        index=i,
        draft_id=node.token_id,
        draft_piece=node.piece,
        q_drafter=node.q_drafter,
        verifier_id=parent.verifier_id,
        verifier_piece=parent.verifier_piece,
        p_verifier=parent.p_verifier,
        p_verifier_of_draft=node.p_verifier_of_draft,
        decision=decision,
        accept_prob=node.accept_prob,
        draw=node.draw,
        draft_top=node.draft_top,
        verifier_top=parent.verifier_top,
    )
