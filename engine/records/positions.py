"""The display records of one step, built in one place for chains and trees: a Position per column (the chain view)
and, for a tree step, a TreeNode per node.

The columns follow one branch of the tree: the accepted path, then where the block stopped (the first refused child,
or the bonus slot after a leaf). A chain step shows its whole branch, the drafts after the mismatch out of play, and
always the bonus slot: k + 1 columns. A tree step shows the path and where it stopped; its other nodes are in the
TreeStep record.
"""

from __future__ import annotations

import torch

from ..drafting.tree import ROOT, DraftTree
from ..verification.acceptance import TreeVerdict, residual
from .pieces import PieceDecoder
from .results import Alternative, Decision, Guess, Position, Source, Token, TreeNode, TreeStep

TOP_ALTERNATIVES = 5


def top_alternatives(decoder: PieceDecoder, probs: torch.Tensor | None) -> tuple[Alternative, ...]:
    return top_alternatives_rows(decoder, probs[None])[0] if probs is not None else ()


def top_alternatives_rows(decoder: PieceDecoder, probs: torch.Tensor) -> list[tuple[Alternative, ...]]:
    """top_alternatives of every row of `probs` [n, vocab] in one topk (one per row costs ~0.1 ms over 49k tokens)."""
    values, indices = torch.topk(probs, min(TOP_ALTERNATIVES, probs.shape[-1]), dim=-1)
    return [tuple(Alternative(i, decoder.alone(i), v) for v, i in zip(row_values, row_indices))
            for row_values, row_indices in zip(values.tolist(), indices.tolist())]


class _Tops:
    """The drafter's top alternatives per distinct distribution (siblings share their parent's): one topk each."""

    def __init__(self, decoder: PieceDecoder):
        self.decoder, self.seen = decoder, {}

    def __call__(self, probs: torch.Tensor | None) -> tuple[Alternative, ...]:
        if probs is None:
            return ()
        if id(probs) not in self.seen:
            self.seen[id(probs)] = top_alternatives(self.decoder, probs)
        return self.seen[id(probs)]


def verifier_choices(tree: DraftTree, verdict: TreeVerdict, argmax: list[int], next_token: int | None) -> list[int]:
    """The verifier's token after each row (row 0: the context, row i + 1: node i): where the path goes (the kept
    draft), the emitted token right after the path, its argmax anywhere else."""
    chosen = list(argmax)
    parent = ROOT
    for node in verdict.path:
        chosen[parent + 1] = tree.ids[node]
        parent = node
    if next_token is not None:
        chosen[parent + 1] = next_token
    return chosen


def columns_of(tree: DraftTree, path: tuple[int, ...], whole_branch: bool) -> tuple[list[int], bool]:
    """The nodes shown as columns, and whether a bonus slot follows them."""
    last = path[-1] if path else ROOT
    refused = tree.children(last)[:1]
    nodes = list(path) + refused
    if refused and whole_branch:  # a chain: the drafts after the mismatch, out of play
        while tree.children(nodes[-1]):
            nodes.append(tree.children(nodes[-1])[0])
    return nodes, whole_branch or not refused


def step_records(decoder: PieceDecoder, context: list[int], tree: DraftTree, verdict: TreeVerdict,
                 p_rows: torch.Tensor, argmax: list[int], next_token: int | None, n_emitted: int,
                 tree_shape: str | None) -> tuple[tuple[Position, ...], tuple[Token, ...], TreeStep | None]:
    """Columns, emitted tokens (text and source) and, for a tree step (`tree_shape`), the node records of one step."""
    chosen = verifier_choices(tree, verdict, argmax, next_token)
    nodes, bonus_slot = columns_of(tree, verdict.path, whole_branch=tree_shape is None)
    ids = [tree.ids[n] for n in nodes]
    pieces = decoder.pieces(context, ids)
    rows = [tree.parents[n] + 1 for n in nodes] + ([nodes[-1] + 1 if nodes else 0] if bonus_slot else [])
    verifier_tops = top_alternatives_rows(decoder, p_rows[rows])
    draft_tops = _Tops(decoder)
    stop = len(verdict.path)
    positions = []
    for i, row in enumerate(rows):
        node = nodes[i] if i < len(nodes) else None
        verifier_id = chosen[row]
        p_row = p_rows[row]
        tried = verdict.examined.get(node) if node is not None else None
        if node is None:  # the bonus slot after the last node
            decision = _slot_decision(i, stop, len(tree), next_token, n_emitted)
        elif i < stop:
            decision = Decision.ACCEPTED if i < n_emitted else Decision.STOPPED
        else:
            decision = Decision.REJECTED if i == stop else Decision.NOT_REACHED
        resample = _residual(tree, verdict, p_row, node) if decision is Decision.REJECTED and tried else None
        positions.append(Position(
            index=i,
            draft_id=ids[i] if node is not None else None,
            draft_piece=pieces[i] if node is not None else None,
            q_drafter=float(tree.q_rows[node][ids[i]]) if node is not None else None,  # the q the rule used
            verifier_id=verifier_id,
            verifier_piece=decoder.piece(context + ids[:i], verifier_id),
            p_verifier=float(p_row[verifier_id]),
            p_verifier_of_draft=float(p_row[ids[i]]) if node is not None else None,
            decision=decision,
            accept_prob=tried[0] if tried else None,
            draw=tried[1] if tried else None,
            draft_top=draft_tops(tree.drafter_probs[node]) if node is not None else (),
            verifier_top=verifier_tops[i],
            residual_prob=float(resample[0][verifier_id]) if resample else None,
            residual_top=top_alternatives(decoder, resample[0]) if resample else (),
            residual_mass=resample[1] if resample else None,
        ))
    at_leaf = not tree.children(verdict.path[-1] if verdict.path else ROOT)
    source = Source.PLAIN if not len(tree) else Source.BONUS if at_leaf else Source.CORRECTION
    emitted_pieces = pieces[:stop] + [positions[stop].verifier_piece]
    sources = [Source.DRAFT] * stop + [source]
    emitted_ids = [tree.ids[n] for n in verdict.path] + ([next_token] if next_token is not None else [])
    emitted = tuple(Token(t, piece, src) for t, piece, src in zip(emitted_ids[:n_emitted], emitted_pieces, sources))
    record = None
    if tree_shape is not None:
        record = _tree_record(decoder, context, tree, verdict, p_rows, chosen, n_emitted, draft_tops, tree_shape)
    return tuple(positions), emitted, record


def _slot_decision(i: int, stop: int, drafted: int, next_token: int | None, n_emitted: int) -> Decision:
    if i != stop or next_token is None:
        return Decision.NOT_REACHED  # after a mismatch, or all kept with bonus tokens off
    if i >= n_emitted:
        return Decision.STOPPED  # the text ended on the path, before the verifier's token
    return Decision.BONUS if drafted else Decision.PLAIN  # no drafts: a plain decoding step, not a bonus


def _residual(tree: DraftTree, verdict: TreeVerdict, p_row: torch.Tensor, refused: int) -> tuple[torch.Tensor, float]:
    """Sampling, where the block stopped: normalize(max(0, p - q)) after every sibling the rule refused there (for a
    chain, the one draft), which the correction was drawn from; and how much of p was left before normalising."""
    p, mass = p_row, 0.0
    for child in tree.children(tree.parents[refused]):
        if child not in verdict.examined:
            break
        mass = min(1.0, float(torch.clamp(p - tree.q_rows[child], min=0.0).sum()))
        p = residual(p, tree.q_rows[child])
    return p, mass


def _tree_record(decoder: PieceDecoder, context: list[int], tree: DraftTree, verdict: TreeVerdict, p_rows,
                 chosen: list[int], n_emitted: int, draft_tops: _Tops, shape: str) -> TreeStep:
    on_path = {node: i for i, node in enumerate(verdict.path)}
    verifier_tops = top_alternatives_rows(decoder, p_rows)
    nodes = []
    for node in range(len(tree)):
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
                draft_top=draft_tops(tree.drafter_probs[node]),
                verifier_top=verifier_tops[node + 1],
            )
        )
    return TreeStep(
        shape=shape,
        nodes=tuple(nodes),
        path=tuple(verdict.path),
        root_verifier_id=chosen[0],
        root_verifier_piece=decoder.piece(context, chosen[0]),
        root_p_verifier=float(p_rows[0][chosen[0]]),
        root_verifier_top=verifier_tops[0],
    )


def guess_record(decoder: PieceDecoder, context: list[int], guessed: list[int], drafter_probs: torch.Tensor | None,
                 source: str | None, verifier_id: int) -> Guess:
    """A plain step's unverified guess against the token the verifier produced: where that token stood among the
    drafter's top 5 (a lookup copy has one candidate: its own token)."""
    if not guessed:
        return Guess(source, None, "", None)
    if drafter_probs is None:
        candidates = guessed[:1]
    else:
        values, indices = torch.topk(drafter_probs[0], min(TOP_ALTERNATIVES, drafter_probs.shape[-1]))
        candidates = [i for v, i in zip(values.tolist(), indices.tolist()) if v > 0]  # a point mass has one
    rank = candidates.index(verifier_id) + 1 if verifier_id in candidates else None
    return Guess(source, guessed[0], decoder.piece(context, guessed[0]), rank)
