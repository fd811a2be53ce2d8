"""An EAGLE-style draft head: one small decoder layer that drafts from the verifier's own hidden states.

At each draft position the head reads [the verifier's feature for the previous position, the embedding of the
current token], maps it to the hidden size with `fc`, runs ONE decoder layer of the verifier's shape (its own
small KV cache) and predicts the next feature; the verifier's LM head, restricted to the N most frequent tokens
of the training text (FR-Spec), turns that into draft probabilities. Drafting further ahead feeds the head's own
predicted feature back in. A drafted token costs about fc + one layer + N x hidden, a few percent of a verifier
pass, which is what lets it win where `same` cannot.

Features are the verifier's final hidden states *after* its final RMSNorm (EAGLE's choice): before the norm,
SmolLM2's residual stream has an RMS of 25-40 and outlier dimensions up to ~4000 (attention-sink positions),
which made regression and the head's input badly scaled. The head's output is read by the LM head directly.

A head may also read EAGLE-3's fused features: the inputs of a low and a middle verifier layer (each normalised
with that layer's own input norm) beside the final feature, mixed into one hidden-size vector by `fuse` before
`fc`, wherever the head reads the verifier's real rows (the context and the first draft position); further ahead
it reads its own predicted feature as before.

A head lives in a folder: `head.safetensors` (fc, the layer, `vocab_ids`) and `card.json` (what it was trained
for and how; see training/train_head.py). The embedded verifier's head ships in engine/drafting/heads/smollm2-135m.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ConfigError, ModelLoadError
from ..forward.fast_llama import KVCache, LayerShape, decoder_layer, causal_mask, inverse_frequencies, rms_norm, rotary, rotary_at
from ..forward.matmul import linear as _linear
from .protocol import NO_PROPOSAL, BaseDrafter, DraftKnobs, Proposal, TreeDraft, draft_chain
from .tree import DraftTree
from .tree_draft import keep_path, model_tree

HEADS_DIR = Path(__file__).parent / "heads"
SHIPPED = {"smollm2-135m": HEADS_DIR / "smollm2-135m"}
FORMAT = 2  # 2 adds `fuse` and the card's `tap_layers`; format 1 heads (no taps) still load
READS = (1, 2)
LAYER_NAMES = ("input_layernorm", "q_proj", "k_proj", "v_proj", "o_proj", "post_attention_layernorm",
               "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class HeadShape:
    hidden_size: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    intermediate_size: int
    rope_theta: float
    eps: float

    @classmethod
    def of_verifier(cls, config) -> "HeadShape":
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        rope = getattr(config, "rope_parameters", None) or {}
        theta = rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))
        return cls(config.hidden_size, config.num_attention_heads, config.num_key_value_heads, head_dim,
                   config.intermediate_size, float(theta), float(config.rms_norm_eps))

    @property
    def layer(self) -> LayerShape:
        return LayerShape(self.n_heads, self.n_kv_heads, self.head_dim, self.eps)


@dataclass(frozen=True)
class DraftHead:
    """A loaded head: its own weights plus the card that says what it was trained for."""

    shape: HeadShape
    fc: torch.Tensor  # [hidden, 2 * hidden]
    layer: tuple[torch.Tensor, ...]  # decoder_layer's order (LAYER_NAMES)
    vocab_ids: torch.Tensor  # [N] verifier token ids the head scores, most frequent first
    card: dict
    path: Path | None = None
    fuse: torch.Tensor | None = None  # [hidden, (len(tap_layers) + 1) * hidden], with tap layers only
    tap_layers: tuple[int, ...] = ()  # verifier layers whose inputs the head reads beside the final feature


def head_state(fc: torch.Tensor, layer: tuple[torch.Tensor, ...], vocab_ids: torch.Tensor,
               fuse: torch.Tensor | None = None) -> dict:
    state = {"fc.weight": fc, "vocab_ids": vocab_ids.to(torch.int32)}
    if fuse is not None:
        state["fuse.weight"] = fuse
    state.update({f"layer.{name}.weight": tensor for name, tensor in zip(LAYER_NAMES, layer)})
    return {name: tensor.detach().contiguous() for name, tensor in state.items()}


def save_head(folder: Path, shape: HeadShape, state: dict, card: dict, dtype=torch.float16) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: (v if k == "vocab_ids" else v.to(dtype)) for k, v in state.items()}
    save_file(tensors, str(folder / "head.safetensors"))
    full_card = {"format": FORMAT if "fuse.weight" in state else 1, "shape": shape.__dict__, **card}
    (folder / "card.json").write_text(json.dumps(full_card, indent=1) + "\n")


def resolve_head_path(spec: str | None, verifier_name: str) -> Path:
    if spec is None:
        if verifier_name not in SHIPPED:
            raise ConfigError(
                f"no trained head ships for {verifier_name}: train one (make train-head) and pass head:PATH"
            )
        return SHIPPED[verifier_name]
    return Path(spec).expanduser()


def load_head(spec: str | None, verifier) -> DraftHead:
    """The head `spec` names (None: the one shipped for `verifier`), checked against `verifier`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = resolve_head_path(spec, verifier.name)
    if folder.is_file():
        folder = folder.parent
    if not (folder / "card.json").is_file() or not (folder / "head.safetensors").is_file():
        raise ModelLoadError(f"{folder} is not a draft head: it needs card.json and head.safetensors")
    try:
        card = json.loads((folder / "card.json").read_text())
        tensors = load_file(str(folder / "head.safetensors"))
    except (OSError, ValueError, SafetensorError) as error:
        raise ModelLoadError(f"cannot read the draft head in {folder}: {error}") from error
    if card.get("format") not in READS:
        raise ModelLoadError(f"the draft head in {folder} has format {card.get('format')!r}; this version reads "
                             f"{' and '.join(map(str, READS))}")
    try:
        shape = HeadShape(**card["shape"])
        fc = tensors["fc.weight"].float()
        layer = tuple(tensors[f"layer.{name}.weight"].float() for name in LAYER_NAMES)
        vocab_ids = tensors["vocab_ids"].long()
        tap_layers = tuple(int(i) for i in card.get("tap_layers", ()))
        fuse = tensors["fuse.weight"].float() if tap_layers else None
    except (KeyError, TypeError, ValueError) as error:
        raise ModelLoadError(f"the draft head in {folder} is incomplete: missing {error}") from error
    if fuse is not None and tuple(fuse.shape) != (shape.hidden_size, (len(tap_layers) + 1) * shape.hidden_size):
        raise ModelLoadError(f"the draft head in {folder} has a fuse weight of shape {tuple(fuse.shape)} for "
                             f"{len(tap_layers)} tapped layers")
    check_compatible(shape, card, vocab_ids, verifier, folder)
    layers = verifier.model.config.num_hidden_layers
    if any(not 0 <= i < layers for i in tap_layers):
        raise ConfigError(f"the draft head in {folder} reads layers {list(tap_layers)} but {verifier.name} has "
                          f"{layers}: it was trained for another model")
    return DraftHead(shape, fc, layer, vocab_ids, card, folder, fuse, tap_layers)


def tapped_rows(model, taps: torch.Tensor, layers) -> torch.Tensor:
    """The tapped layers' inputs side by side ([n, m x h], as the verifier's stream hands them back before the final
    feature), each through that layer's own input norm: what the fuse matrix reads beside the final feature. One
    function, so drafting reads exactly what training read."""
    eps = model.config.rms_norm_eps
    rows = taps.split(model.config.hidden_size, dim=-1)
    return torch.cat([rms_norm(row.float(), model.model.layers[layer].input_layernorm.weight, eps)
                      for row, layer in zip(rows, layers, strict=True)], dim=-1)


def check_compatible(shape: HeadShape, card: dict, vocab_ids: torch.Tensor, verifier, folder: Path) -> None:
    """Refuse a head trained for another model: hidden size, vocabulary, layer shape or the model's name."""
    config = verifier.model.config
    trained_for = card.get("verifier")
    if trained_for is not None and trained_for != verifier.name:
        raise ConfigError(f"the draft head in {folder} was trained for {trained_for}, not {verifier.name}: "
                          f"train one for {verifier.name} (make train-head VERIFIER=...)")
    if shape.hidden_size != config.hidden_size:
        raise ConfigError(f"the draft head in {folder} has hidden size {shape.hidden_size} but {verifier.name} has "
                          f"{config.hidden_size}: it was trained for another model")
    if card.get("vocab_size") not in (None, verifier.vocab_size) or int(vocab_ids.max()) >= verifier.vocab_size:
        raise ConfigError(f"the draft head in {folder} was trained for a vocabulary of {card.get('vocab_size')} "
                          f"tokens but {verifier.name} has {verifier.vocab_size}: it was trained for another model")
    if shape != HeadShape.of_verifier(config):
        raise ConfigError(f"the draft head in {folder} has a layer shape that does not match {verifier.name}")


def conditional_acceptance(by_position: list[float]) -> tuple[float, ...]:
    """A card's acceptance by position made conditional: of the drafts at depth d the verifier reached (all before
    them kept), the share it kept (the card's 0.47, 0.21, 0.09: 0.47, 0.45, 0.45)."""
    prior, reached = [], 1.0
    for kept in by_position:
        if not 0 < kept <= reached:
            break
        prior.append(kept / reached)
        reached = kept
    return tuple(prior)


class HeadDrafter(BaseDrafter):
    """Drafts with a DraftHead over its own one-layer KV cache, fed the verifier's features through `observe`.

    Positions: the head's entry at position p reads [feature of p - 1, embedding of token p] and predicts the
    feature of p (so the token at p + 1). `length` counts the context positions whose entries were made from
    real verifier features; entries past it (drafting ahead on predicted features) are dropped after each proposal.
    """

    reads_verifier_features = True  # embeddings, final norm and LM head rows are the verifier's (shares them)

    def __init__(self, name: str, head: DraftHead, verifier):
        self.name = name
        self.head = head
        self.vocab_size = verifier.vocab_size
        model = verifier.model
        self.embed = model.get_input_embeddings().weight if hasattr(model, "get_input_embeddings") else model.model.embed_tokens.weight
        self.final_norm = model.model.norm.weight
        self.tap_layers = head.tap_layers  # the session asks the verifier's stream for these layers' inputs
        self.model = model
        self.eps = head.shape.eps
        # The LM head restricted to the head's vocabulary: one [N, hidden] copy, so a draft step reads N rows only.
        self.head_rows = model.get_output_embeddings().weight.index_select(0, head.vocab_ids).contiguous()
        self.inv_freq = inverse_frequencies(head.shape.rope_theta, head.shape.head_dim)
        self.tree_lm = HeadTreeLM(self)
        self.reset([])

    @property
    def vocabulary(self) -> int:
        return int(self.head.vocab_ids.numel())

    def acceptance_prior(self, source: str | None) -> tuple[float, ...]:
        """The card's held-out acceptance by position, made conditional (conditional_acceptance)."""
        return conditional_acceptance(self.head.card.get("held_out", {}).get("per_position_acceptance") or [])

    def reset(self, context: list[int]) -> None:
        self.cache = KVCache(1, self.head.shape.n_kv_heads, self.head.shape.head_dim)
        self.features = torch.empty(0, self.head.shape.hidden_size)
        self.feature_length = 0
        self.length = 1  # position 0 has no previous feature, hence no entry

    def observe(self, start: int, hidden: torch.Tensor) -> None:
        end = start + hidden.shape[0]
        if end > self.features.shape[0]:
            grown = torch.empty(max(2 * self.features.shape[0], end + 256), self.features.shape[1])
            grown[: self.feature_length] = self.features[: self.feature_length]
            self.features = grown
        self.features[start:end] = self.head_input(hidden)
        self.feature_length = end

    def head_input(self, hidden: torch.Tensor) -> torch.Tensor:
        """What the head reads from the verifier's rows: the final feature, fused with the tapped layers' if any."""
        size = self.head.shape.hidden_size
        final = rms_norm(hidden[:, -size:].float(), self.final_norm, self.eps)
        if not self.tap_layers:
            return final
        tapped = tapped_rows(self.model, hidden[:, :-size], self.tap_layers)
        return _linear(torch.cat((tapped, final), dim=-1), self.head.fuse)

    def rollback(self, length: int) -> None:
        self.length = max(1, min(self.length, length))
        self.feature_length = min(self.feature_length, length)

    def _forward(self, features: torch.Tensor, token_ids: list[int], position: int,
                 slots: list[int] | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Head entries for positions position.. from [feature of the previous position, token embedding].

        Position p lives in cache slot p - 1: position 0 has no entry, and no query may see an unwritten slot.
        A tree pass gives each row its own slot for the rotary angle (`slots`) and a tree `mask`.
        """
        count, slot = len(token_ids), position - 1
        self.cache.reserve(slot + count, keep=slot)
        x = _linear(torch.cat((features, self.embed[torch.tensor(token_ids)]), dim=-1), self.head.fc)
        cos, sin = rotary(self.inv_freq, slot, slot + count) if slots is None else rotary_at(self.inv_freq, slots)
        mask = causal_mask(count, slot) if mask is None else mask
        return decoder_layer(x, self.head.layer, self.cache.keys[0], self.cache.values[0], slot, cos, sin, mask,
                             self.head.shape.layer)

    def _logits(self, predicted: torch.Tensor) -> torch.Tensor:
        """Full-vocabulary logits of one predicted feature: -inf outside the head's vocabulary, so q is 0 there."""
        return self._logits_rows(predicted[None])[0]

    def _logits_rows(self, predicted: torch.Tensor) -> torch.Tensor:
        """_logits of n predicted features [n, hidden] in one product (a tree depth's nodes at once)."""
        full = torch.full((predicted.shape[0], self.vocab_size), float("-inf"))
        full[:, self.head.vocab_ids] = _linear(predicted, self.head_rows)
        return full

    def ready(self, context: list[int]) -> bool:
        return len(context) >= 2  # a one-token context has no verifier feature yet

    def enter(self, context: list[int]) -> torch.Tensor:
        """Feed the context positions that lack an entry (from real verifier features); the last one's prediction."""
        end = len(context)
        if self.feature_length < end - 1:
            raise RuntimeError(f"head drafter: verifier features cover {self.feature_length} of {end - 1} positions")
        start = min(self.length, end - 1)  # at least the last position, whose output starts the drafts
        predicted = self._forward(self.features[start - 1 : end - 1], context[start:end], start)[-1]
        self.length = end
        return predicted

    @torch.inference_mode()
    def propose(self, context: list[int], k: int, knobs: DraftKnobs, generator: torch.Generator) -> Proposal:
        end = len(context)
        if k == 0 or not self.ready(context):
            return NO_PROPOSAL
        predicted = self.enter(context)

        def advance(i: int, token: int) -> torch.Tensor:
            nonlocal predicted  # draft further on the head's own predicted feature (entries past `length`)
            predicted = self._forward(predicted[None], [token], end + i)[-1]
            return self._logits(predicted)

        return draft_chain(self._logits(predicted), advance, context, k, knobs, generator)

    def draft_tree(self, context: list[int], shape, depth: int, knobs: DraftKnobs,
                   generator: torch.Generator) -> TreeDraft:
        if not self.ready(context):
            return TreeDraft(DraftTree())
        return model_tree(self.tree_lm, context, shape, depth, knobs, generator)

    def keep_path(self, draft: TreeDraft, path: tuple[int, ...]) -> None:
        keep_path(self.tree_lm, draft, path)


class HeadTreeLM:
    """The head as engine/drafting/tree_draft.py sees a drafter's language model, so the head drafts trees like any model.

    Rows are the head's cache slots (slot = position - 1). A node's input is its parent's predicted feature; its
    parent is the deepest tree row its mask lets it see (the root: the context's last row). `compact` drops every
    drafted row: the head re-enters the accepted tokens next step from the verifier's real features.
    """

    def __init__(self, drafter: HeadDrafter):
        self.drafter = drafter
        self.length = 0  # rows filled, drafted ones included
        self.prefix = 0  # rows of the context (made from real features)
        self.outputs: dict[int, torch.Tensor] = {}  # row -> the head's predicted feature there

    @torch.inference_mode()
    def catch_up(self, context: list[int]) -> torch.Tensor:
        predicted = self.drafter.enter(context)
        self.prefix = self.length = self.drafter.length - 1
        self.outputs = {self.prefix - 1: predicted}
        return self.drafter._logits(predicted)[None]

    def _parent(self, sees: torch.Tensor, row: int) -> int:
        tree_rows = sees[self.prefix : row].nonzero()
        return self.prefix + int(tree_rows[-1]) if len(tree_rows) else self.prefix - 1

    @torch.inference_mode()
    def extend(self, token_ids: list[int], keep: int, positions: list[int], mask: torch.Tensor) -> torch.Tensor:
        first = self.length
        parents = [self._parent(mask[i], first + i) for i in range(len(token_ids))]
        features = torch.stack([self.outputs[p] for p in parents])
        out = self.drafter._forward(features, token_ids, first + 1, slots=positions, mask=mask)
        self.length = first + len(token_ids)
        self.outputs.update({first + i: row for i, row in enumerate(out)})
        return self.drafter._logits_rows(out[-keep:])

    def compact(self, start: int, rows: list[int]) -> None:
        self.length = self.prefix
        self.outputs = {}
