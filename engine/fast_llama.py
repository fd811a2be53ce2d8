"""A lean forward pass for Llama-architecture models, over the transformers model's own weight tensors.

Why not just call the transformers model: on a CPU a decode step is a handful of skinny matrix products
(1 to k + 1 rows), and two things there cost more than the arithmetic.
- MKL picks a slow kernel for `x @ W.T` with a few rows; the same product computed as `W @ x.T` is 1.1-2.9x
  faster for 2-5 rows here (bench/matmul_layouts.py measures it; one row: no difference). A verify pass is exactly such a product, at every layer.
- transformers rebuilds masks, position embeddings and cache bookkeeping on every call; here the rotary angles
  are computed for the new positions only, the KV cache is preallocated, and rolling back is moving a length.
The arithmetic is otherwise transformers' own (same RMSNorm, rotary, SDPA and order of operations), and the
tests check the logits against the transformers model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

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


def _linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x [T, in] @ weight[out, in].T, with the layout MKL is fast at for few rows (see the module docstring)."""
    if x.shape[0] == 1:
        return F.linear(x, weight)
    return torch.mm(weight, x.t()).t()


class FastLlamaLM:
    """Same interface as CachedLM: `extend`, `catch_up`, `rollback`, `reset`, `length`, `vocab_size`, `model`."""

    def __init__(self, model: torch.nn.Module, vocab_size: int, device: torch.device):
        config = model.config
        inner = model.model
        self.model = model
        self.vocab_size = vocab_size
        self.device = device
        self.n_heads = config.num_attention_heads
        self.n_kv_heads = config.num_key_value_heads
        self.head_dim = config.hidden_size // self.n_heads
        self.eps = config.rms_norm_eps
        self.embed = inner.embed_tokens.weight
        self.final_norm = inner.norm.weight
        self.head = model.lm_head.weight
        # References, not copies: an early-exit view lists fewer layers over the same tensors.
        self.layers = [
            (
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
            for layer in inner.layers
        ]
        theta = config.rope_parameters["rope_theta"]
        # transformers' default rotary frequencies, computed the same way so the angles are bit-identical.
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.int64).float() / self.head_dim))
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.capacity = 0
        self.length = 0

    def reset(self) -> None:
        self.keys, self.values, self.capacity, self.length = [], [], 0, 0

    def rollback(self, length: int) -> None:
        """Forget everything after the first `length` tokens: the cache rows past it are simply overwritten later."""
        self.length = min(self.length, length)

    def catch_up(self, context: list[int], extra: list[int] = (), keep: int = 1) -> torch.Tensor:
        """Feed whatever part of `context` the cache lacks, plus `extra`, in one forward pass."""
        pending = list(context[self.length :]) + list(extra)
        return self.extend(pending, keep=keep)

    def _reserve(self, needed: int) -> None:
        if needed <= self.capacity:
            return
        capacity = max(2 * self.capacity, -(-needed // _CHUNK) * _CHUNK)
        shape = (self.n_kv_heads, capacity, self.head_dim)
        keys = [torch.empty(shape) for _ in self.layers]
        values = [torch.empty(shape) for _ in self.layers]
        for old, new in zip(self.keys + self.values, keys + values):
            new[:, : self.length] = old[:, : self.length]
        self.keys, self.values, self.capacity = keys, values, capacity

    def _rms_norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        variance = x.pow(2).mean(-1, keepdim=True)
        return weight * (x * torch.rsqrt(variance + self.eps))

    @staticmethod
    def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rotated * sin

    @torch.inference_mode()
    def extend(self, token_ids: list[int], keep: int = 1) -> torch.Tensor:
        """Append `token_ids` to the cache; return float logits [keep, vocab] of the last `keep` of them."""
        count = len(token_ids)
        start, end = self.length, self.length + count
        self._reserve(end)
        x = self.embed[torch.tensor(token_ids, dtype=torch.long)]  # [T, hidden]
        angles = torch.arange(start, end, dtype=torch.float32)[:, None] * self.inv_freq[None, :]
        angles = torch.cat((angles, angles), dim=-1)
        cos, sin = angles.cos(), angles.sin()
        # Queries see the whole cache plus the new tokens up to their own position.
        mask = torch.ones(count, end, dtype=torch.bool).tril(start) if count > 1 else None
        for index, (norm_in, wq, wk, wv, wo, norm_post, w_gate, w_up, w_down) in enumerate(self.layers):
            h = self._rms_norm(x, norm_in)
            q = _linear(h, wq).reshape(count, self.n_heads, self.head_dim).transpose(0, 1)
            k = _linear(h, wk).reshape(count, self.n_kv_heads, self.head_dim).transpose(0, 1)
            v = _linear(h, wv).reshape(count, self.n_kv_heads, self.head_dim).transpose(0, 1)
            q, k = self._rotate(q, cos, sin), self._rotate(k, cos, sin)
            self.keys[index][:, start:end] = k
            self.values[index][:, start:end] = v
            attended = F.scaled_dot_product_attention(
                q, self.keys[index][:, :end], self.values[index][:, :end], attn_mask=mask, enable_gqa=True
            )
            x = x + _linear(attended.transpose(0, 1).reshape(count, -1), wo)
            h = self._rms_norm(x, norm_post)
            x = x + _linear(F.silu(_linear(h, w_gate)) * _linear(h, w_up), w_down)
        self.length = end
        last = self._rms_norm(x[-keep:], self.final_norm)
        return _linear(last, self.head)[:, : self.vocab_size].float()
