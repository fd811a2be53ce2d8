"""Drafters propose the next k tokens: another model (or the verifier itself), prompt lookup, early exit, a head.

Every drafter satisfies the `Drafter` protocol (engine/drafting/protocol.py); `build_drafter` is the one factory that turns a
spec into one. Adding a drafter is one class and one line in `_BUILDERS`.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import TYPE_CHECKING, Callable

import torch

from ..config import is_remote
from ..errors import ConfigError, ModelLoadError
from ..forward.cached_lm import DecodingStream, open_cached_lm
from .lookup_card import lookup_prior
from .protocol import NO_PROPOSAL, BaseDrafter, DraftKnobs, Drafter, Proposal, TreeDraft, draft_chain
from .sampling import one_hot
from .tree_draft import keep_path, model_tree, ngram_tree

if TYPE_CHECKING:
    from ..config import SpecConfig
    from ..models.loading import LoadedModel, Progress
    from .tree_shape import TreeShape


class ModelDrafter(BaseDrafter):
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
        if k == 0:
            return NO_PROPOSAL
        first = self.lm.catch_up(context)[-1]
        return draft_chain(first, lambda i, token: self.lm.extend([token])[-1], context, k, knobs, generator)

    def draft_tree(self, context: list[int], shape: "TreeShape", depth: int, knobs: DraftKnobs,
                   generator: torch.Generator) -> TreeDraft:
        return model_tree(self.lm, context, shape, depth, knobs, generator)

    def keep_path(self, draft: TreeDraft, path: tuple[int, ...]) -> None:
        keep_path(self.lm, draft, path)


class NgramDrafter(BaseDrafter):
    """Prompt lookup: copy what followed the most recent earlier occurrence of the context's last n tokens."""

    def __init__(self, vocab_size: int, max_n: int = 3, min_n: int = 1):
        self.name = "ngram"
        self.vocab_size = vocab_size
        self.max_n = max_n
        self.min_n = min_n  # the shortest suffix match worth copying from (chains and trees alike)

    def lookup(self, context: list[int], k: int) -> list[int]:
        length = len(context)
        for n in range(min(self.max_n, length - 1), self.min_n - 1, -1):
            suffix = context[length - n :]
            # Most recent match first; the match must end before the suffix itself starts to have a continuation.
            for start in range(length - n - 1, -1, -1):
                if context[start : start + n] == suffix:
                    extended = list(context)
                    for i in range(k):  # overlapping copy (like LZ77): a repeat can continue into itself
                        extended.append(extended[start + n + i])
                    return extended[length:]
        return []

    def acceptance_prior(self, source: str | None) -> tuple[float, ...]:
        """Its card's kept share by depth (lookup_card.json), where a position without a match drafts nothing."""
        return lookup_prior("ngram") if self.min_n == 1 else ()

    def propose(self, context: list[int], k: int, knobs: DraftKnobs, generator: torch.Generator) -> Proposal:
        ids = self.lookup(context, k) if k else []
        if not ids:
            return NO_PROPOSAL
        q = torch.stack([one_hot(t, self.vocab_size) for t in ids])
        return Proposal(ids, q, q)

    def draft_tree(self, context: list[int], shape: "TreeShape", depth: int, knobs: DraftKnobs,
                   generator: torch.Generator) -> TreeDraft:
        return TreeDraft(ngram_tree(context, self.vocab_size, self.max_n, self.min_n, shape, depth))


class LookupHeadDrafter(BaseDrafter):
    """`ngram+head`: prompt lookup when the context's last 2+ tokens occurred earlier, else the draft head.

    Lookup costs nothing and copies long runs where the output repeats its input (code edits, restating), where the
    head rarely agrees; on open-ended text a 2-token match is rare (1 step in 34-44 on the bench's prompts), so the
    head drafts. The head observes every verify pass either way, so it is current whenever it is picked.
    """

    reads_verifier_features = True
    MIN_MATCH = 2  # a 1-token match copies noise: on open-ended text it displaced the head's better drafts

    def __init__(self, name: str, lookup: NgramDrafter, head):
        self.name = name
        self.lookup = lookup
        self.head = head
        self.tree_lm = head.tree_lm
        self.tap_layers = head.tap_layers

    def pick(self, context: list[int]):
        """The part that drafts after `context`: lookup if it has a continuation, else the head."""
        return self.lookup if self.lookup.lookup(context, 1) else self.head

    def source(self, part) -> str:
        """What a step records as `drafted_by` for the part that drafted it."""
        return "lookup" if part is self.lookup else "head"

    def source_for(self, context: list[int]) -> str:
        return self.source(self.pick(context))

    def acceptance_prior(self, source: str | None) -> tuple[float, ...]:
        # Lookup's card for ngram+head: only where it has a 2-token match (elsewhere the head drafts).
        return self.head.acceptance_prior(None) if source == "head" else lookup_prior("ngram+head")

    def reset(self, context: list[int]) -> None:
        self.head.reset(context)

    def rollback(self, length: int) -> None:
        self.head.rollback(length)

    def observe(self, start: int, hidden: torch.Tensor) -> None:
        self.head.observe(start, hidden)

    def propose(self, context: list[int], k: int, knobs: DraftKnobs, generator: torch.Generator) -> Proposal:
        part = self.pick(context)
        proposal = part.propose(context, k, knobs, generator)
        return replace(proposal, source=self.source(part)) if proposal.ids else proposal

    def draft_tree(self, context: list[int], shape: "TreeShape", depth: int, knobs: DraftKnobs,
                   generator: torch.Generator) -> TreeDraft:
        part = self.pick(context)
        draft = part.draft_tree(context, shape, depth, knobs, generator)
        draft.source = self.source(part) if len(draft.tree) else None
        return draft

    def keep_path(self, draft: TreeDraft, path: tuple[int, ...]) -> None:
        self.head.keep_path(draft, path)  # lookup keeps no cache; after a lookup tree draft.rows is empty


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


# ---- the factory ------------------------------------------------------------------------------------------


def _same(argument: str, config: "SpecConfig", verifier: "LoadedModel", progress) -> Drafter:
    # The verifier's own instance (no second copy of the weights), drafting with its own cache.
    lm = open_cached_lm(verifier.model, verifier.vocab_size, verifier.device, config.forward)
    return ModelDrafter("same", lm, shares_verifier_weights=True)


def _ngram(argument: str, config: "SpecConfig", verifier: "LoadedModel", progress) -> Drafter:
    return NgramDrafter(verifier.vocab_size, config.ngram_max)


def _early_exit(argument: str, config: "SpecConfig", verifier: "LoadedModel", progress) -> Drafter:
    layers = len(getattr(getattr(verifier.model, "model", None), "layers", ()))
    count = argument or str(max(1, layers // 2))  # plain `early-exit`: half the verifier's layers
    if not count.isdigit():
        raise ConfigError(f"early-exit drafter needs a layer count, e.g. early-exit:8 (got {argument!r})")
    view = early_exit_view(verifier.model, int(count))
    name = f"early-exit:{argument}" if argument else "early-exit"
    lm = open_cached_lm(view, verifier.vocab_size, verifier.device, config.forward)
    return ModelDrafter(name, lm, shares_verifier_weights=True)


def _head(argument: str, config: "SpecConfig", verifier: "LoadedModel", progress) -> Drafter:
    from .draft_head import HeadDrafter, load_head

    return HeadDrafter(f"head:{argument}" if argument else "head", load_head(argument or None, verifier), verifier)


def _lookup_head(argument: str, config: "SpecConfig", verifier: "LoadedModel", progress) -> Drafter:
    lookup = NgramDrafter(verifier.vocab_size, config.ngram_max, min_n=LookupHeadDrafter.MIN_MATCH)
    head = _head(argument, config, verifier, progress)
    return LookupHeadDrafter(f"ngram+{head.name}", lookup, head)


def _model(spec: str, config: "SpecConfig", verifier: "LoadedModel", progress) -> Drafter:
    from ..models.loading import load_model
    from ..models.tokenizer_check import check_same_tokenizer

    drafter = load_model(spec, config.device, progress, config.trust_remote_code, lean=config.forward != "transformers")
    check_same_tokenizer(verifier.name, verifier.tokenizer, drafter.name, drafter.tokenizer)
    lm = open_cached_lm(drafter.model, verifier.vocab_size, drafter.device, config.forward)
    return ModelDrafter(spec, lm, shares_verifier_weights=False)


Builder = Callable[[str, "SpecConfig", "LoadedModel", "Progress | None"], Drafter]

# spec name (before an optional ":argument") -> builder; anything else is a model spec.
_BUILDERS: dict[str, Builder] = {
    "same": _same,
    "ngram": _ngram,
    "early-exit": _early_exit,
    "head": _head,
    "ngram+head": _lookup_head,
}


def shipped_head(verifier_name: str) -> bool:
    from .draft_head import SHIPPED

    return verifier_name in SHIPPED and (SHIPPED[verifier_name] / "card.json").is_file()


def drafter_choices(verifier_name: str) -> list[str]:
    """The built-in drafters that work for this verifier, best first (what the app's `d` key cycles through)."""
    if is_remote(verifier_name):
        return ["ngram"]  # the others read the verifier's weights or hidden states, which stay on the server
    return (["ngram+head", "head"] if shipped_head(verifier_name) else []) + ["same", "ngram", "early-exit"]


def resolve_spec(spec: str, verifier_name: str) -> str:
    """`auto`: lookup, then the trained head shipped for this verifier if there is one; else the verifier itself."""
    spec = spec.strip()
    if spec == "auto" and is_remote(verifier_name):
        return "ngram"  # a server's verifier: lookup is the built-in drafter that needs nothing of its weights
    if spec == "auto":
        return "ngram+head" if shipped_head(verifier_name) else "same"
    return spec


def built_in(spec: str) -> Builder | None:
    """The builder of a built-in drafter spec (same, ngram, early-exit:N, head[:PATH], ngram+head[:PATH]); None for a
    model spec (`same:x` and `ngram:x` are model names too)."""
    name, _, argument = spec.strip().partition(":")
    builder = _BUILDERS.get(name)
    return None if builder is None or (argument and name in ("same", "ngram")) else builder


def build_drafter(config: "SpecConfig", verifier: "LoadedModel", progress: "Progress | None" = None) -> Drafter:
    """The drafter `config.drafter` names, for `verifier`. Raises ConfigError / ModelLoadError with a clear message."""
    spec = resolve_spec(config.drafter, verifier.name)
    builder = built_in(spec)
    if builder is None:
        return _model(spec, config, verifier, progress)
    return builder(spec.partition(":")[2], config, verifier, progress)
