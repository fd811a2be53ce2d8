"""Drafters propose the next k tokens: another model (or the verifier itself), prompt lookup, early exit."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch

from .cached_lm import DecodingStream
from .errors import ConfigError, ModelLoadError
from .sampling import ban, banned_by_ngram, one_hot, penalize_repetition, sample, warp


@dataclass(frozen=True)
class DraftKnobs:
    sampled: bool
    temperature: float
    top_k: int
    top_p: float
    repetition_penalty: float
    no_repeat_ngram_size: int


@dataclass
class Proposal:
    ids: list[int]
    q_drafter: torch.Tensor | None  # [k, V]: the distribution each draft was drawn from (point mass if greedy)
    shown: torch.Tensor | None  # [k, V]: what to show as the drafter's top alternatives
    seconds: float


class ModelDrafter:
    """A language model drafting with its own KV cache (also used for `same` and `early-exit:N`)."""

    def __init__(self, name: str, lm: DecodingStream, shares_verifier_weights: bool):
        self.name = name
        self.lm = lm
        self.shares_verifier_weights = shares_verifier_weights

    def reset(self, context: list[int]) -> None:
        self.lm.reset()
        if len(context) > 1:
            self.lm.extend(context[:-1])  # prefill all but the last token, which the first draft feeds

    def rollback(self, length: int) -> None:
        self.lm.rollback(length)

    @torch.inference_mode()
    def propose(self, context: list[int], k: int, knobs: DraftKnobs, generator: torch.Generator) -> Proposal:
        start = time.perf_counter()
        if k == 0:
            return Proposal([], None, None, 0.0)
        ids: list[int] = []
        q_rows, shown_rows = [], []
        logits = self.lm.catch_up(context)[-1]
        for i in range(k):
            if knobs.sampled:
                seen = context + ids
                scores = penalize_repetition(logits, seen, knobs.repetition_penalty)
                banned = ban(scores, banned_by_ngram(seen, knobs.no_repeat_ngram_size))
                # With a tiny vocabulary the n-gram ban can remove everything: then ignore it.
                scores = banned if torch.isfinite(banned).any() else scores
                q = warp(scores, knobs.temperature, knobs.top_k, knobs.top_p)
                token = sample(q, generator)
                shown_rows.append(q)
            else:
                token = int(logits.argmax())
                q = one_hot(token, logits.shape[-1])
                shown_rows.append(logits.softmax(-1))
            ids.append(token)
            q_rows.append(q)
            if i < k - 1:
                logits = self.lm.extend([token])[-1]
        return Proposal(ids, torch.stack(q_rows), torch.stack(shown_rows), time.perf_counter() - start)


class NgramDrafter:
    """Prompt lookup: copy what followed the most recent earlier occurrence of the context's last n tokens."""

    shares_verifier_weights = True  # no weights at all

    def __init__(self, vocab_size: int, max_n: int = 3):
        self.name = "ngram"
        self.vocab_size = vocab_size
        self.max_n = max_n

    def reset(self, context: list[int]) -> None:
        pass

    def rollback(self, length: int) -> None:
        pass

    def lookup(self, context: list[int], k: int) -> list[int]:
        length = len(context)
        for n in range(min(self.max_n, length - 1), 0, -1):
            suffix = context[length - n :]
            # Most recent match first; the match must end before the suffix itself starts to have a continuation.
            for start in range(length - n - 1, -1, -1):
                if context[start : start + n] == suffix:
                    extended = list(context)
                    for i in range(k):  # overlapping copy (like LZ77): a repeat can continue into itself
                        extended.append(extended[start + n + i])
                    return extended[length:]
        return []

    def propose(self, context: list[int], k: int, knobs: DraftKnobs, generator: torch.Generator) -> Proposal:
        start = time.perf_counter()
        ids = self.lookup(context, k) if k else []
        if not ids:
            return Proposal([], None, None, time.perf_counter() - start)
        q = torch.stack([one_hot(t, self.vocab_size) for t in ids])
        return Proposal(ids, q, q, time.perf_counter() - start)


def early_exit_view(model: torch.nn.Module, n_layers: int) -> torch.nn.Module:
    """The verifier's first `n_layers` decoder layers plus its final norm and LM head, sharing every weight."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise ModelLoadError(f"early-exit drafting needs a decoder with .model.layers; {type(model).__name__} has none")
    total = len(layers)
    if not 1 <= n_layers < total:
        raise ConfigError(f"early-exit:N needs 1 <= N < {total} (the verifier's layer count), got {n_layers}")
    config = copy.deepcopy(model.config)
    config.num_hidden_layers = n_layers
    if getattr(config, "layer_types", None):
        config.layer_types = config.layer_types[:n_layers]
    # Shallow copies with their own module tables: assigning into them must not touch the verifier.
    view_inner = copy.copy(inner)
    view_inner._modules = dict(inner._modules)
    view_inner.layers = torch.nn.ModuleList(list(layers[:n_layers]))
    view_inner.config = config
    view = copy.copy(model)
    view._modules = dict(model._modules)
    view.model = view_inner
    view.config = config
    return view
