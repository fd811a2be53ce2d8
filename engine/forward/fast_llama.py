"""A lean forward pass for Llama-architecture models, over the transformers model's own weight tensors.

Why not just call the transformers model: on a CPU a decode step is a handful of skinny matrix products
(1 to k + 1 rows), and two things there cost more than the arithmetic.
- Which layout MKL is fast at for a few rows depends on the CPU (up to 2x either way): engine/forward/matmul.py times
  both on the model's own matrices for each row count once and uses the faster. A verify pass is exactly such
  a product, at every layer.
- transformers rebuilds masks, position embeddings and cache bookkeeping on every call; here the rotary angles
  are computed for the new positions only, the KV cache is preallocated, and rolling back is moving a length.
The arithmetic is otherwise transformers' own (same RMSNorm, rotary, SDPA and order of operations), and the
tests check the logits against the transformers model.

`precision="bf16"` (--forward bf16) multiplies by bf16 copies of the weight matrices instead. On a CPU with AMX a
bf16 product costs about the same for 1 to 16 rows (fp32 grows with the rows), so verifying a long block or
a wide tree is nearly free. There (oneDNN with AMX) it is also batch-invariant, which fp32 is not: a row's result
does not depend on how many rows share the pass. Other CPUs' bf16 kernels need not be (an AMD EPYC without AMX is
not), so a bf16 verifier is probed first (engine/forward/bf16_probe.py) and refused where it would not be exact. With the attention below (padded, explicit), every token's logits are bit-identical
whether it was fed alone, in a verify block or as a tree node, so speculative output equals plain decoding at
this precision bit for bit. The residual stream, norms and rotary stay fp32.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .matmul import linear as _linear, plan

_CHUNK = 256  # the KV cache grows by doubling, in multiples of this many positions
PRECISIONS = ("fp32", "bf16")
# bf16 attention runs over the keys padded to a multiple of this (masked): a softmax or product over 301 keys
# rounds differently from one over 304, and a row must see the same length whether it came alone or in a block.
_KEY_PAD = 64
# bf16 products stay batch-invariant up to this many rows (oneDNN with AMX here): bigger passes go in pieces.
_BF16_ROWS = 32


def config_supported(config) -> bool:
    """The architecture this forward implements: a plain Llama decoder without rope scaling or biases."""
    if getattr(config, "model_type", None) != "llama":
        return False
    rope = getattr(config, "rope_parameters", None) or {}
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return (
        rope.get("rope_type", "default") == "default"
        and "rope_theta" in rope
        and not getattr(config, "attention_bias", False)
        and not getattr(config, "mlp_bias", False)
        and getattr(config, "hidden_act", "silu") == "silu"
        and getattr(config, "pretraining_tp", 1) in (None, 1)
        and head_dim * config.num_attention_heads == config.hidden_size
    )


def supports(model: torch.nn.Module) -> bool:
    """True for plain Llama decoders (SmolLM2, TinyLlama, Llama 2/3 without rope scaling) in fp32 on the CPU."""
    config = getattr(model, "config", None)
    embed = getattr(getattr(model, "model", None), "embed_tokens", None)
    return (
        config is not None
        and embed is not None
        and config_supported(config)
        and embed.weight.dtype == torch.float32
        and embed.weight.device.type == "cpu"
    )


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


def rotary(inv_freq: torch.Tensor, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [T, head_dim] for positions start..end-1 (transformers' default rotary embedding)."""
    angles = torch.arange(start, end, dtype=torch.float32)[:, None] * inv_freq[None, :]
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


def rotary_at(inv_freq: torch.Tensor, positions: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [T, head_dim] at the given positions (a tree's nodes sit at prefix length + depth)."""
    angles = torch.tensor(positions, dtype=torch.float32)[:, None] * inv_freq[None, :]
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


def inverse_frequencies(theta: float, head_dim: int) -> torch.Tensor:
    # transformers' default rotary frequencies, computed the same way so the angles are bit-identical.
    return 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


@dataclass(frozen=True)
class LayerShape:
    n_heads: int
    n_kv_heads: int
    head_dim: int
    eps: float


def sdpa_attention(q, keys, values, end: int, mask: torch.Tensor | None, shape: LayerShape) -> torch.Tensor:
    """transformers' attention: the rows q [n_heads, T, d] over the cache up to `end` (fp32)."""
    return F.scaled_dot_product_attention(q, keys[:, :end], values[:, :end], attn_mask=mask, enable_gqa=True)


def padded_attention(q, keys, values, end: int, mask: torch.Tensor, shape: LayerShape) -> torch.Tensor:
    """The same attention computed so that each row's result is the same bits whatever other rows share the pass:
    bf16 products (batch-invariant), the key axis padded to a multiple of _KEY_PAD (cache rows past `end` are
    finite and masked out), fp32 softmax. `mask` [T, padded] bool (padded_mask)."""
    count, groups = q.shape[1], shape.n_heads // shape.n_kv_heads
    padded = mask.shape[1]
    grouped = q.to(torch.bfloat16).reshape(shape.n_kv_heads, groups * count, shape.head_dim)  # heads sharing a kv head
    scores = torch.bmm(grouped, keys[:, :padded].transpose(1, 2)).float() * shape.head_dim**-0.5
    scores = scores.masked_fill(~mask.repeat(groups, 1).unsqueeze(0), float("-inf"))
    weights = torch.softmax(scores, dim=-1).to(torch.bfloat16)
    return torch.bmm(weights, values[:, :padded]).reshape(shape.n_heads, count, shape.head_dim)


def padded_mask(mask: torch.Tensor | None, count: int, start: int) -> torch.Tensor:
    """The pass's mask [T, start + T] (None: causal) widened with False columns to a multiple of _KEY_PAD."""
    if mask is None:
        mask = torch.ones(count, start + count, dtype=torch.bool).tril(start)
    padded = -(-mask.shape[1] // _KEY_PAD) * _KEY_PAD
    return F.pad(mask, (0, padded - mask.shape[1]), value=False)


def bf16_product(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Rows times a bf16 matrix, fp32 out. Always x @ W.T: a layout planned per row count would break batch
    invariance. At most _BF16_ROWS rows a product: past that oneDNN picks another kernel that rounds differently
    (measured: 33 rows differ from the same rows one at a time), so a 33-row tree pass would change the text."""
    x = x.to(torch.bfloat16)
    if x.shape[0] <= _BF16_ROWS:
        return F.linear(x, weight).float()
    return torch.cat([F.linear(rows, weight) for rows in x.split(_BF16_ROWS)]).float()


def decoder_layer(x, weights, keys, values, start, cos, sin, mask, shape: LayerShape,
                  product=_linear, attention=sdpa_attention) -> torch.Tensor:
    """One Llama decoder layer over the new rows x [T, hidden]; writes their keys and values at start..start+T-1.

    `keys`/`values` [n_kv_heads, capacity, head_dim] hold the cache; queries see it up to their own row.
    fp32: `_linear` and `sdpa_attention`; bf16: `bf16_product` and `padded_attention` (module docstring).
    """
    norm_in, wq, wk, wv, wo, norm_post, w_gate, w_up, w_down = weights
    count, end = x.shape[0], start + x.shape[0]
    h = rms_norm(x, norm_in, shape.eps)
    q = product(h, wq).reshape(count, shape.n_heads, shape.head_dim).transpose(0, 1)
    k = product(h, wk).reshape(count, shape.n_kv_heads, shape.head_dim).transpose(0, 1)
    v = product(h, wv).reshape(count, shape.n_kv_heads, shape.head_dim).transpose(0, 1)
    q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
    keys[:, start:end] = k
    values[:, start:end] = v
    attended = attention(q, keys, values, end, mask, shape)
    x = x + product(attended.transpose(0, 1).reshape(count, -1), wo)
    h = rms_norm(x, norm_post, shape.eps)
    return x + product(F.silu(product(h, w_gate)) * product(h, w_up), w_down)


# One bf16 copy per weight tensor per process: the verifier, the plain baseline and a `same` drafter share it.
# Keyed by id (tensors compare elementwise, so no WeakKeyDictionary); an entry goes when its tensor does.
_BF16_COPIES: dict[int, torch.Tensor] = {}


def bf16_copy(weight: torch.Tensor) -> torch.Tensor:
    copy = _BF16_COPIES.get(id(weight))
    if copy is None:
        copy = _BF16_COPIES[id(weight)] = weight.detach().to(torch.bfloat16).contiguous()
        weakref.finalize(weight, _BF16_COPIES.pop, id(weight), None)
    return copy


def causal_mask(count: int, start: int) -> torch.Tensor | None:
    """New rows see the whole cache plus the new rows up to their own position (None for one row: sees all)."""
    return torch.ones(count, start + count, dtype=torch.bool).tril(start) if count > 1 else None


def layer_weights(layer: torch.nn.Module) -> tuple[torch.Tensor, ...]:
    """A transformers-named Llama decoder layer's tensors in decoder_layer's order (references, not copies)."""
    return (
        layer.input_layernorm.weight,
        layer.self_attn.q_proj.weight,
        layer.self_attn.k_proj.weight,
        layer.self_attn.v_proj.weight,
        layer.self_attn.o_proj.weight,
        layer.post_attention_layernorm.weight,
        layer.mlp.gate_proj.weight,
        layer.mlp.up_proj.weight,
        layer.mlp.down_proj.weight,
    )


class KVCache:
    """Preallocated keys and values for n layers; grows by doubling; rolling back is moving `length`."""

    def __init__(self, n_layers: int, n_kv_heads: int, head_dim: int, dtype: torch.dtype = torch.float32):
        self.n_layers, self.n_kv_heads, self.head_dim, self.dtype = n_layers, n_kv_heads, head_dim, dtype
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.capacity = 0

    def reserve(self, needed: int, keep: int) -> None:
        """Room for `needed` positions, keeping the first `keep` of the current ones."""
        if needed <= self.capacity:
            return
        capacity = max(2 * self.capacity, -(-needed // _CHUNK) * _CHUNK)
        shape = (self.n_kv_heads, capacity, self.head_dim)
        # Zeros, not empty: padded bf16 attention multiplies masked rows by a weight of 0, and 0 * NaN is NaN.
        keys = [torch.zeros(shape, dtype=self.dtype) for _ in range(self.n_layers)]
        values = [torch.zeros(shape, dtype=self.dtype) for _ in range(self.n_layers)]
        for old, new in zip(self.keys + self.values, keys + values):
            new[:, :keep] = old[:, :keep]
        self.keys, self.values, self.capacity = keys, values, capacity


class FastLlamaLM:
    """Same interface as CachedLM: `extend`, `catch_up`, `rollback`, `reset`, `length`, `vocab_size`, `model`.

    After each pass, `hidden` holds the final hidden states (before the final norm) of the rows it fed, starting
    at position `hidden_start`: a feature-level drafter (engine/drafting/draft_head.py) reads them. With `tap_layers` set,
    each row of `hidden` is [input of each tapped layer..., final hidden state] side by side (EAGLE-3's fused
    low/mid/high features), for a head trained on them.
    """

    on_this_cpu = True

    def __init__(self, model: torch.nn.Module, vocab_size: int, device: torch.device, precision: str = "fp32"):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        config = model.config
        inner = model.model
        self.model = model
        self.vocab_size = vocab_size
        self.device = device
        head_dim = config.hidden_size // config.num_attention_heads
        self.shape = LayerShape(config.num_attention_heads, config.num_key_value_heads, head_dim, config.rms_norm_eps)
        self.embed = inner.embed_tokens.weight
        self.final_norm = inner.norm.weight
        self.head = model.lm_head.weight
        # References, not copies: an early-exit view lists fewer layers over the same tensors.
        self.layers = [layer_weights(layer) for layer in inner.layers]
        self.plan_weights = [w for layer in self.layers for w in layer[6:8]]  # gate and up: most of a pass's bytes
        self.precision = precision
        self.product, self.attention = _linear, sdpa_attention
        if precision == "bf16":
            self.product, self.attention = bf16_product, padded_attention
            self.head = bf16_copy(self.head)
            # The norms (indices 0 and 5) stay fp32: only the matrices are multiplied in bf16.
            self.layers = [tuple(w if i in (0, 5) else bf16_copy(w) for i, w in enumerate(layer))
                           for layer in self.layers]
        self.inv_freq = inverse_frequencies(config.rope_parameters["rope_theta"], head_dim)
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        self.cache = KVCache(len(self.layers), config.num_key_value_heads, head_dim, dtype)
        self.length = 0
        self.hidden: torch.Tensor | None = None
        self.hidden_start = 0
        self.tap_layers: tuple[int, ...] = ()

    def plan(self, row_counts) -> None:
        """Choose the matmul layout for these row counts now (engine/forward/matmul.py; otherwise at their first pass)."""
        if self.precision == "bf16":
            return  # one layout only: the bf16 products must not change with the row count
        for rows in row_counts:
            plan(rows, self.plan_weights)

    def reset(self) -> None:
        self.cache = KVCache(self.cache.n_layers, self.cache.n_kv_heads, self.cache.head_dim, self.cache.dtype)
        self.length = 0

    def rollback(self, length: int) -> None:
        """Forget everything after the first `length` tokens: the cache rows past it are simply overwritten later."""
        self.length = min(self.length, length)

    def catch_up(self, context: list[int], extra: list[int] = (), keep: int = 1) -> torch.Tensor:
        """Feed whatever part of `context` the cache lacks, plus `extra`, in one forward pass."""
        pending = list(context[self.length :]) + list(extra)
        return self.extend(pending, keep=keep)

    @torch.inference_mode()
    def compact(self, start: int, rows: list[int]) -> None:
        """Keep the first `start` rows plus `rows` (ascending, each >= start), moved up to follow them.

        A tree step keeps the accepted path's entries this way: no recompute, the rows are copied.
        """
        if rows == list(range(start, start + len(rows))):  # already in place (a chain's accepted prefix)
            self.length = min(self.length, start + len(rows))
            return
        index = torch.tensor(rows, dtype=torch.long)
        for cache in self.cache.keys + self.cache.values:
            cache[:, start : start + len(rows)] = cache[:, index]  # advanced indexing copies first: no aliasing
        self.length = start + len(rows)

    @torch.inference_mode()
    def extend(
        self,
        token_ids: list[int],
        keep: int = 1,
        positions: list[int] | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Append `token_ids` to the cache; return float logits [keep, vocab] of the last `keep` of them.

        A tree pass gives each token its own position id and a boolean `mask` [T, cached + T] of what it sees.
        """
        count = len(token_ids)
        start = self.length
        if self.precision == "fp32":
            plan(count, self.plan_weights)
        self.cache.reserve(start + count, keep=start)
        x = self.embed[torch.tensor(token_ids, dtype=torch.long)]  # [T, hidden]
        if positions is None:
            cos, sin = rotary(self.inv_freq, start, start + count)
        else:
            cos, sin = rotary_at(self.inv_freq, positions)
        if self.precision == "bf16":
            mask = padded_mask(mask, count, start)
        elif mask is None:
            mask = causal_mask(count, start)
        taps = []
        for index, weights in enumerate(self.layers):
            if index in self.tap_layers:
                taps.append(x)
            x = decoder_layer(x, weights, self.cache.keys[index], self.cache.values[index], start, cos, sin, mask,
                              self.shape, self.product, self.attention)
        self.length = start + count
        self.hidden, self.hidden_start = (torch.cat((*taps, x), dim=-1) if taps else x), start
        last = rms_norm(x[-keep:], self.final_norm, self.shape.eps)
        return self.product(last, self.head)[:, : self.vocab_size].float()
