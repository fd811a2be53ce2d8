"""Turning logits into the distributions tokens are drawn from (temperature, top-k, top-p, penalties)."""

from __future__ import annotations

import torch


def warp(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """Probabilities after temperature, top-k and top-p (nucleus) filtering; rows of `logits` are independent."""
    scores = logits.float() / temperature
    vocab = scores.shape[-1]
    if 0 < top_k < vocab:
        kth = torch.topk(scores, top_k, dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p < 1.0:
        sorted_scores, order = torch.sort(scores, descending=True, dim=-1)
        sorted_probs = sorted_scores.softmax(dim=-1)
        # Drop a token when the mass before it already reaches top_p; the top token is always kept.
        mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
        drop_sorted = mass_before >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        scores = scores.masked_fill(drop, float("-inf"))
    return scores.softmax(dim=-1)


def penalize_repetition(logits: torch.Tensor, context_ids: list[int], penalty: float) -> torch.Tensor:
    """CTRL-style penalty as in transformers: seen tokens' positive logits divided, negative ones multiplied."""
    if penalty == 1.0 or not context_ids:
        return logits
    seen = torch.tensor(sorted(set(context_ids)), dtype=torch.long, device=logits.device)
    seen = seen[seen < logits.shape[-1]]
    picked = logits.index_select(-1, seen)
    picked = torch.where(picked > 0, picked / penalty, picked * penalty)
    return logits.index_copy(-1, seen, picked)


def banned_by_ngram(context_ids: list[int], n: int) -> list[int]:
    """Tokens that would repeat an n-gram already present in the context (no_repeat_ngram_size)."""
    if n <= 0 or len(context_ids) < n:
        return []
    prefix = context_ids[len(context_ids) - n + 1 :] if n > 1 else []
    banned = set()
    for start in range(len(context_ids) - n + 1):
        if context_ids[start : start + n - 1] == prefix:
            banned.add(context_ids[start + n - 1])
    return sorted(banned)


def ban(logits: torch.Tensor, token_ids: list[int]) -> torch.Tensor:
    if not token_ids:
        return logits
    index = torch.tensor([t for t in token_ids if t < logits.shape[-1]], dtype=torch.long, device=logits.device)
    return logits.index_fill(-1, index, float("-inf"))


def one_hot(token_id: int, vocab: int) -> torch.Tensor:
    """A point mass: the 'distribution' a greedy or n-gram draft was drawn from."""
    q = torch.zeros(vocab)
    q[token_id] = 1.0
    return q


def sample(probs: torch.Tensor, generator: torch.Generator) -> int:
    return int(torch.multinomial(probs, 1, generator=generator).item())
