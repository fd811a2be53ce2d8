"""A Llama checkpoint as plain torch modules, with transformers' parameter names, loaded without transformers.

The warm start of the app is mostly imports: transformers' model classes pull in seconds of modules the engine
never uses, because the engine decodes through fast_llama.FastLlamaLM anyway. This module builds the same
parameter tree (model.layers[i].self_attn.q_proj, ...) from a config.json and a model.safetensors, so
everything that reads the weights (FastLlamaLM, early_exit_view, parameter-sharing checks) works unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn


class _Weight(nn.Module):
    """A module that only holds `.weight`, as a placeholder on the meta device until the checkpoint is assigned.

    Not nn.Linear / nn.Embedding: their random initialisation (even on meta) imports torch._dynamo, ~2 s here.
    """

    def __init__(self, *shape: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(shape, device="meta"), requires_grad=False)


def _norm(size: int) -> _Weight:
    return _Weight(size)


def _linear(n_in: int, n_out: int) -> _Weight:
    return _Weight(n_out, n_in)


class _Layer(nn.Module):
    def __init__(self, c: SimpleNamespace):
        super().__init__()
        kv = c.num_key_value_heads * c.head_dim
        self.input_layernorm = _norm(c.hidden_size)
        self.self_attn = nn.Module()
        self.self_attn.q_proj = _linear(c.hidden_size, c.num_attention_heads * c.head_dim)
        self.self_attn.k_proj = _linear(c.hidden_size, kv)
        self.self_attn.v_proj = _linear(c.hidden_size, kv)
        self.self_attn.o_proj = _linear(c.num_attention_heads * c.head_dim, c.hidden_size)
        self.post_attention_layernorm = _norm(c.hidden_size)
        self.mlp = nn.Module()
        self.mlp.gate_proj = _linear(c.hidden_size, c.intermediate_size)
        self.mlp.up_proj = _linear(c.hidden_size, c.intermediate_size)
        self.mlp.down_proj = _linear(c.intermediate_size, c.hidden_size)


class LeanLlamaForCausalLM(nn.Module):
    """Weights only, decoded by FastLlamaLM; calling it recomputes logits over a whole sequence (for checks)."""

    def __init__(self, config: SimpleNamespace):
        super().__init__()
        self.config = config
        self.model = nn.Module()
        self.model.embed_tokens = _Weight(config.vocab_size, config.hidden_size)
        self.model.layers = nn.ModuleList(_Layer(config) for _ in range(config.num_hidden_layers))
        self.model.norm = _norm(config.hidden_size)
        self.lm_head = _linear(config.hidden_size, config.vocab_size)

    @classmethod
    def from_folder(cls, folder: Path) -> "LeanLlamaForCausalLM":
        from safetensors import safe_open
        from safetensors.torch import load_file

        config = read_config(folder)
        model = cls(config)
        path = str(folder / "model.safetensors")
        state = load_file(path)
        with safe_open(path, "pt") as handle:
            aliases = handle.metadata() or {}
        # safetensors' save_model stores a tied tensor once and records its other names in the metadata.
        for alias, stored in aliases.items():
            if alias not in state and stored in state:
                state[alias] = state[stored]
        if "lm_head.weight" not in state and getattr(config, "tie_word_embeddings", False):
            state["lm_head.weight"] = state["model.embed_tokens.weight"]
        model.load_state_dict(state, strict=True, assign=True)
        return model.eval()

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    @torch.inference_mode()
    def forward(self, input_ids: torch.Tensor) -> SimpleNamespace:
        from ..forward.fast_llama import FastLlamaLM

        lm = FastLlamaLM(self, self.config.vocab_size, torch.device("cpu"))
        ids = input_ids[0].tolist()
        return SimpleNamespace(logits=lm.extend(ids, keep=len(ids))[None])


def read_config(folder: Path) -> SimpleNamespace:
    data = json.loads((folder / "config.json").read_text())
    config = SimpleNamespace(**data)
    if getattr(config, "head_dim", None) is None:
        config.head_dim = config.hidden_size // config.num_attention_heads
    return config


def can_load(folder: Path) -> bool:
    """A plain fp32 Llama checkpoint in one safetensors file, which FastLlamaLM decodes exactly."""
    from ..forward.fast_llama import config_supported

    try:
        config = read_config(folder)
    except (OSError, ValueError, TypeError):
        return False
    return (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists() and config_supported(config)
