"""The accept rules: greedy prefix matching and speculative (rejection) sampling.

Pure functions of tensors, so they can be tested on hand-made p and q.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .sampling import sample


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
class SampledVerdict:
    accepted: int  # length of the accepted prefix
    next_token: int  # correction (resampled) or bonus token (sampled from p)
    accept_probs: tuple[float, ...]  # min(1, p/q) per examined position
    draws: tuple[float, ...]  # the uniform draws


def accept_greedy(draft_ids: list[int], verifier_argmax: list[int]) -> int:
    """Length of the longest prefix where the draft equals the verifier's argmax (len(verifier_argmax) == k + 1)."""
    accepted = 0
    for draft_id, verifier_id in zip(draft_ids, verifier_argmax):
        if draft_id != verifier_id:
            break
        accepted += 1
    return accepted


def accept_sampled(
    draft_ids: list[int],
    p_verifier: torch.Tensor,  # [k + 1, V]
    q_drafter: torch.Tensor | None,  # [k, V]; None when nothing was drafted
    generator: torch.Generator,
) -> SampledVerdict:
    """Speculative sampling (Leviathan et al. / Chen et al.): the emitted tokens are distributed exactly as p."""
    k = len(draft_ids)
    if k:
        index = torch.tensor(draft_ids).unsqueeze(-1)
        p_of_draft = p_verifier[:k].gather(-1, index).squeeze(-1).tolist()
        q_of_draft = q_drafter.gather(-1, index).squeeze(-1).tolist()
    probs, draws = [], []
    for i in range(k):
        ratio = accept_probability(p_of_draft[i], q_of_draft[i])
        u = float(torch.rand((), generator=generator))
        probs.append(ratio)
        draws.append(u)
        if u >= ratio:
            correction = sample(residual(p_verifier[i], q_drafter[i]), generator)
            return SampledVerdict(i, correction, tuple(probs), tuple(draws))
    bonus = sample(p_verifier[k], generator)
    return SampledVerdict(k, bonus, tuple(probs), tuple(draws))


@dataclass(frozen=True)
class Verdict:
    """What the accept rule decided for one step."""

    accepted: int
    next_token: int | None  # None when all k were accepted and bonus tokens are off
    verifier_ids: list[int]  # the verifier row: its token at each of the k + 1 positions
    p_verifier: torch.Tensor  # [k + 1, V]
    accept_probs: tuple[float, ...] = ()
    draws: tuple[float, ...] = ()


def accept(
    draft_ids: list[int],
    q_drafter: torch.Tensor | None,
    logits: torch.Tensor,
    config,
    generator: torch.Generator,
) -> Verdict:
    """Apply the rule in force (config.verify) to the verifier's logits [k + 1, V] over the drafts."""
    from .sampling import warp

    k = len(draft_ids)
    argmax = logits.argmax(dim=-1).tolist()
    if config.verify == "greedy":
        p_verifier = logits.softmax(dim=-1)
        accepted = accept_greedy(draft_ids, argmax)
        next_token = argmax[accepted]
        verifier_ids = argmax
        probs, draws = (), ()
    else:
        p_verifier = warp(logits, config.temperature, config.top_k, config.top_p)
        # With no drafts (an n-gram miss) this samples the verifier's own token from p.
        verdict = accept_sampled(draft_ids, p_verifier, q_drafter, generator)
        accepted, next_token = verdict.accepted, verdict.next_token
        probs, draws = verdict.accept_probs, verdict.draws
        # Row shown for sampling: kept drafts, then the token the verifier drew; argmax where never reached.
        verifier_ids = draft_ids[:accepted] + [next_token] + argmax[accepted + 1 :]
    if accepted == k and not config.bonus and k > 0:
        next_token = None
    return Verdict(accepted, next_token, verifier_ids, p_verifier, probs, draws)
