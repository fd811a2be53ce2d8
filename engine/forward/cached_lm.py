"""A causal LM with its own KV cache: feed new tokens, get their logits, roll back to any shorter length."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Protocol

import torch

from ..errors import EngineError
from . import fast_llama
from .remote_lm import RemoteLM, RemoteModel


class DecodingStream(Protocol):
    """One model's KV-cached view of the context: CachedLM (transformers' forward) or fast_llama.FastLlamaLM."""

    model: torch.nn.Module
    vocab_size: int
    length: int
    hidden: torch.Tensor | None  # final hidden states (before the final norm) of the last pass's rows
    hidden_start: int  # the position of hidden's first row
    on_this_cpu: bool  # False for a server's passes: their time says nothing about this CPU's load

    def reset(self) -> None: ...
    def extend(
        self, token_ids: list[int], keep: int = 1, positions: list[int] | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor: ...
    def catch_up(self, context: list[int], extra: list[int] = (), keep: int = 1) -> torch.Tensor: ...
    def rollback(self, length: int) -> None: ...
    def compact(self, start: int, rows: list[int]) -> None: ...


@contextmanager
def feature_hooks(model, tap_layers, final: Callable[[torch.Tensor], object],
                  tap: Callable[[int, torch.Tensor], object]) -> Iterator[None]:
    """While inside, every forward of a transformers Llama hands over what a draft head reads: the final norm's
    input (`final`) and each tapped layer's input (`tap(index, states)`). Hooked per call, as the model may be
    shared; training/make_data.py records its training features through the same hooks."""
    inner = getattr(model, "model", None)
    norm = getattr(inner, "norm", None)
    hooks = [norm.register_forward_hook(lambda m, args, out: final(args[0]))] if norm is not None else []
    for index in tap_layers:
        hooks.append(inner.layers[index].register_forward_pre_hook(
            lambda m, args, kwargs, index=index: tap(index, args[0] if args else kwargs["hidden_states"]),
            with_kwargs=True))
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


def open_cached_lm(model, vocab_size: int, device: torch.device, forward: str = "auto") -> DecodingStream:
    """A cached decoding stream over `model`: the lean Llama forward where it applies, else transformers'.

    "bf16" falls back like "auto" for a model the lean forward cannot run (a drafter's precision is free to
    differ); the session refuses a verifier it cannot run in bf16 (require_lean_forward).
    """
    if isinstance(model, RemoteModel):
        return RemoteLM(model, vocab_size)
    if forward in ("auto", "bf16") and fast_llama.supports(model):
        return fast_llama.FastLlamaLM(model, vocab_size, device, "bf16" if forward == "bf16" else "fp32")
    if not hasattr(model, "generate"):  # a lean_llama module: weights only, no transformers forward to call
        raise EngineError("this model was loaded without transformers: load it with forward='transformers'")
    return CachedLM(model, vocab_size, device)


def require_lean_forward(model, name: str, forward: str) -> None:
    """--forward bf16 promises the batch-invariant lean forward for the verifier: refuse a model it cannot run."""
    if forward == "bf16" and not fast_llama.supports(model):
        raise EngineError(
            f"--forward bf16 runs only the engine's lean Llama forward, on the CPU: {name} is not a plain Llama "
            "decoder in fp32 on the CPU. Use --forward auto."
        )


class CachedLM:
    """Holds the KV cache of one decoding stream over a (possibly shared) model.

    `length` is how many tokens of the context the cache covers; callers feed the rest.
    """

    on_this_cpu = True

    def __init__(self, model, vocab_size: int, device: torch.device):
        self.model = model
        self.vocab_size = vocab_size  # logits are cut to the vocab the two models share
        self.device = device
        self.tap_layers: tuple[int, ...] = ()  # as FastLlamaLM: hidden = [tapped layers' inputs..., final] per row
        self.reset()

    def reset(self) -> None:
        from transformers import DynamicCache  # imported here: the lean path never needs transformers

        self.cache = DynamicCache(config=self.model.config)
        self.length = 0
        self.hidden, self.hidden_start = None, 0

    @torch.inference_mode()
    def extend(
        self, token_ids: list[int], keep: int = 1, positions: list[int] | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Append `token_ids` to the cache; return float logits [keep, vocab] of the last `keep` of them.

        A tree pass gives each token its own position id and a boolean `mask` [T, cached + T] of what it sees.
        """
        ids = torch.tensor([token_ids], dtype=torch.long, device=self.device)
        extra = {}
        if positions is not None:
            extra["position_ids"] = torch.tensor([positions], dtype=torch.long, device=self.device)
        if mask is not None:
            # A 4D mask is used as given (additive, so the eager and SDPA attentions read it alike).
            dtype = self.model.get_input_embeddings().weight.dtype
            blocked = torch.full(mask.shape, torch.finfo(dtype).min, dtype=dtype)
            extra["attention_mask"] = torch.where(mask, torch.zeros((), dtype=dtype), blocked)[None, None].to(self.device)
        captured, tapped = [], {}
        with feature_hooks(self.model, self.tap_layers, captured.append, tapped.__setitem__):
            # The cache is updated in place (transformers 5 calls the argument `cache`).
            out = self.model(input_ids=ids, cache=self.cache, use_cache=True, logits_to_keep=keep, **extra)
        if captured and len(tapped) == len(self.tap_layers):
            rows = [tapped[index] for index in self.tap_layers] + [captured[-1]]
            self.hidden = torch.cat(rows, dim=-1)[0].float().cpu()
        else:
            self.hidden = None
        self.hidden_start = self.length
        self.length += len(token_ids)
        return out.logits[0, -keep:, : self.vocab_size].float().cpu()

    def catch_up(self, context: list[int], extra: list[int] = (), keep: int = 1) -> torch.Tensor:
        """Feed whatever part of `context` the cache lacks, plus `extra`, in one forward pass."""
        pending = list(context[self.length :]) + list(extra)
        return self.extend(pending, keep=keep)

    @torch.inference_mode()
    def compact(self, start: int, rows: list[int]) -> None:
        """Keep the first `start` cached tokens plus the tokens at `rows` (ascending, each >= start), in order."""
        if rows == list(range(start, start + len(rows))):  # already in place (a chain's accepted prefix)
            self.rollback(start + len(rows))
            return
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        for layer in self.cache.layers:
            layer.keys = torch.cat((layer.keys[:, :, :start], layer.keys.index_select(2, index)), dim=2)
            layer.values = torch.cat((layer.values[:, :, :start], layer.values.index_select(2, index)), dim=2)
        self.length = start + len(rows)

    def rollback(self, length: int) -> None:
        """Forget everything after the first `length` tokens (transformers 5: crop takes a negative count)."""
        if length < self.length:
            self.cache.crop(length - self.length)
            self.length = length
