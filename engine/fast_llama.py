"""A lean forward pass for Llama-architecture models, over the transformers model's own weight tensors.

Why not just call the transformers model: on a CPU a decode step is a handful of skinny matrix products
(1 to k + 1 rows), and two things there cost more than the arithmetic.
- Which layout MKL is fast at for a few rows depends on the CPU (up to 2x either way): engine/matmul.py times
  both on the model's own matrices for each row count once and uses the faster. A verify pass is exactly such
  a product, at every layer.
- transformers rebuilds masks, position embeddings and cache bookkeeping on every call; here the rotary angles
  are computed for the new positions only, the KV cache is preallocated, and rolling back is moving a length.
The arithmetic is otherwise transformers' own (same RMSNorm, rotary, SDPA and order of operations), and the
tests check the logits against the transformers model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .matmul import linear as _linear, plan

_CHUNK = 256  # the KV cache grows by doubling, in multiples of this many positions


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


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


@dataclass(frozen=True)
class LayerShape:
    n_heads: int
    n_kv_heads: int
    head_dim: int
    eps: float


def decoder_layer(x, weights, keys, values, start, cos, sin, mask, shape: LayerShape) -> torch.Tensor:
    """One Llama decoder layer over the new rows x [T, hidden]; writes their keys and values at start..start+T-1.

    `keys`/`values` [n_kv_heads, capacity, head_dim] hold the cache; queries see it up to their own row.
    """
    norm_in, wq, wk, wv, wo, norm_post, w_gate, w_up, w_down = weights
    count, end = x.shape[0], start + x.shape[0]
    h = rms_norm(x, norm_in, shape.eps)
    q = _linear(h, wq).reshape(count, shape.n_heads, shape.head_dim).transpose(0, 1)
    k = _linear(h, wk).reshape(count, shape.n_kv_heads, shape.head_dim).transpose(0, 1)
    v = _linear(h, wv).reshape(count, shape.n_kv_heads, shape.head_dim).transpose(0, 1)
    q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
    keys[:, start:end] = k
    values[:, start:end] = v
    attended = F.scaled_dot_product_attention(q, keys[:, :end], values[:, :end], attn_mask=mask, enable_gqa=True)
    x = x + _linear(attended.transpose(0, 1).reshape(count, -1), wo)
    h = rms_norm(x, norm_post, shape.eps)
    return x + _linear(F.silu(_linear(h, w_gate)) * _linear(h, w_up), w_down)


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

    def __init__(self, n_layers: int, n_kv_heads: int, head_dim: int):
        self.n_layers, self.n_kv_heads, self.head_dim = n_layers, n_kv_heads, head_dim
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.capacity = 0

    def reserve(self, needed: int, keep: int) -> None:
        """Room for `needed` positions, keeping the first `keep` of the current ones."""
        if needed <= self.capacity:
            return
        capacity = max(2 * self.capacity, -(-needed // _CHUNK) * _CHUNK)
        shape = (self.n_kv_heads, capacity, self.head_dim)
        keys = [torch.empty(shape) for _ in range(self.n_layers)]
        values = [torch.empty(shape) for _ in range(self.n_layers)]
        for old, new in zip(self.keys + self.values, keys + values):
            new[:, :keep] = old[:, :keep]
        self.keys, self.values, self.capacity = keys, values, capacity


class FastLlamaLM:
    """Same interface as CachedLM: `extend`, `catch_up`, `rollback`, `reset`, `length`, `vocab_size`, `model`.

    After each pass, `hidden` holds the final hidden states (before the final norm) of the rows it fed, starting
    at position `hidden_start`: a feature-level drafter (engine/draft_head.py) reads them.
    """

    def __init__(self, model: torch.nn.Module, vocab_size: int, device: torch.device):
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
        self.inv_freq = inverse_frequencies(config.rope_parameters["rope_theta"], head_dim)
        self.cache = KVCache(len(self.layers), config.num_key_value_heads, head_dim)
        self.length = 0
        self.hidden: torch.Tensor | None = None
        self.hidden_start = 0

    def plan(self, row_counts) -> None:
        """Choose the matmul layout for these row counts now (engine/matmul.py; otherwise at their first pass)."""
        for rows in row_counts:
            plan(rows, self.plan_weights)

    def reset(self) -> None:
        self.cache = KVCache(self.cache.n_layers, self.cache.n_kv_heads, self.cache.head_dim)
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
        plan(count, self.plan_weights)
        self.cache.reserve(start + count, keep=start)
        x = self.embed[torch.tensor(token_ids, dtype=torch.long)]  # [T, hidden]
        if positions is None:
            cos, sin = rotary(self.inv_freq, start, start + count)
        else:
            cos, sin = rotary_at(self.inv_freq, positions)
        if mask is None:
            mask = causal_mask(count, start)
        for index, weights in enumerate(self.layers):
            x = decoder_layer(x, weights, self.cache.keys[index], self.cache.values[index], start, cos, sin, mask,
                              self.shape)
        self.length = start + count
        self.hidden, self.hidden_start = x, start
        last = rms_norm(x[-keep:], self.final_norm, self.shape.eps)
        return _linear(last, self.head)[:, : self.vocab_size].float()
