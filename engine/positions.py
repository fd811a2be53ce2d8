"""The display records of one step: a Position per column (k drafts + the bonus slot), built in one place."""

from __future__ import annotations

import torch

from .acceptance import Verdict, residual
from .drafters import Proposal
from .pieces import PieceDecoder
from .results import Alternative, Decision, Position, Source

TOP_ALTERNATIVES = 5


def top_alternatives(decoder: PieceDecoder, probs: torch.Tensor | None) -> tuple[Alternative, ...]:
    return top_alternatives_rows(decoder, probs[None])[0] if probs is not None else ()


def top_alternatives_rows(decoder: PieceDecoder, probs: torch.Tensor) -> list[tuple[Alternative, ...]]:
    """top_alternatives of every row of `probs` [n, vocab] in one topk (one per row costs ~0.1 ms over 49k tokens)."""
    values, indices = torch.topk(probs, min(TOP_ALTERNATIVES, probs.shape[-1]), dim=-1)
    return [tuple(Alternative(i, decoder.alone(i), v) for v, i in zip(row_values, row_indices))
            for row_values, row_indices in zip(values.tolist(), indices.tolist())]


def verifier_source(drafted: int, accepted: int) -> Source:
    """Where the verifier's own token of a step comes from: after zero drafts, after a full block, or a correction."""
    if drafted == 0:
        return Source.PLAIN
    return Source.BONUS if accepted == drafted else Source.CORRECTION


def decision_at(i: int, k: int, verdict: Verdict, n_emitted: int) -> Decision:
    if i < verdict.accepted:
        decision = Decision.ACCEPTED
    elif i == verdict.accepted and i < k:
        decision = Decision.REJECTED
    elif i == k and verdict.accepted == k and verdict.next_token is not None:
        decision = Decision.BONUS if k else Decision.PLAIN  # no drafts: a plain decoding step, not a bonus
    else:
        decision = Decision.NOT_REACHED
    if decision in (Decision.ACCEPTED, Decision.BONUS, Decision.PLAIN) and i >= n_emitted:
        decision = Decision.STOPPED
    return decision


def build_positions(
    decoder: PieceDecoder, context: list[int], proposal: Proposal, verdict: Verdict, n_emitted: int
) -> tuple[Position, ...]:
    k = len(proposal.ids)
    draft_pieces = decoder.pieces(context, proposal.ids)
    verifier_tops = top_alternatives_rows(decoder, verdict.p_verifier[: k + 1])
    draft_tops = top_alternatives_rows(decoder, proposal.shown[:k]) if k and proposal.shown is not None else [()] * k
    positions = []
    for i in range(k + 1):
        draft_id = proposal.ids[i] if i < k else None
        verifier_id = verdict.verifier_ids[i]
        p_row = verdict.p_verifier[i]
        examined = i < len(verdict.accept_probs)
        decision = decision_at(i, k, verdict, n_emitted)
        resampled = decision is Decision.REJECTED and examined  # sampling verification drew the correction
        residual_row = residual(p_row, proposal.q_drafter[i]) if resampled else None
        positions.append(
            Position(
                index=i,
                draft_id=draft_id,
                draft_piece=draft_pieces[i] if i < k else None,
                q_drafter=float(proposal.q_drafter[i, draft_id]) if i < k else None,
                verifier_id=verifier_id,
                verifier_piece=decoder.piece(context + proposal.ids[:i], verifier_id),
                p_verifier=float(p_row[verifier_id]),
                p_verifier_of_draft=float(p_row[draft_id]) if i < k else None,
                decision=decision,
                accept_prob=verdict.accept_probs[i] if examined else None,
                draw=verdict.draws[i] if examined else None,
                draft_top=draft_tops[i] if i < k else (),
                verifier_top=verifier_tops[i],
                residual_prob=float(residual_row[verifier_id]) if resampled else None,
                residual_top=top_alternatives(decoder, residual_row) if resampled else (),
                residual_mass=min(1.0, float((p_row - proposal.q_drafter[i]).clamp(min=0.0).sum())) if resampled else None,
            )
        )
    return tuple(positions)
