"""A model the engine loads, written as a folder a vLLM server serves correctly (issue 27: a remote verifier).

The engine's cache of a dequantized GGUF (engine/models/loading.py) is not servable as it is: safetensors' save_model keeps
a tied tensor once, under `lm_head.weight`, and the config says `architectures: null`. vLLM then finds no
`model.embed_tokens.weight` and serves uniform logits (every logprob log(1/vocab)) without an error. The folder
written here is the layout transformers itself writes: every tensor under its own name (the input embeddings
always; `lm_head.weight` only when it is not tied to them), `architectures` set, and the tokenizer's files.

No vllm import: the server runs in its own environment (`make vllm-env`); this only writes files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

from ..errors import ModelLoadError

EMBEDDINGS = "model.embed_tokens.weight"
LM_HEAD = "lm_head.weight"
# model_type -> the class vLLM instantiates; the engine's own forward (fast_llama) and lean loader are Llama-only.
ARCHITECTURES = {"llama": "LlamaForCausalLM"}
# The tokenizer as transformers saves it; vLLM loads it with AutoTokenizer from the same folder.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


def export_for_vllm(model_or_folder, out_folder) -> Path:
    """Write `model_or_folder` (a LoadedModel, or a folder with config.json and model.safetensors such as the
    engine's GGUF cache) to `out_folder` as vLLM serves it; returns the folder. Overwrites the files it writes."""
    out = Path(out_folder)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(model_or_folder, (str, Path)):
        config, state = _read_folder(Path(model_or_folder))
        _copy_tokenizer_files(Path(model_or_folder), out)
    else:
        config, state = _config_dict(model_or_folder.model.config), dict(model_or_folder.model.state_dict())
        _save_tokenizer(model_or_folder.tokenizer, out)
    state = servable_state(state, tied=bool(config.get("tie_word_embeddings", False)))
    config = servable_config(config, state)
    _write_weights(state, out / "model.safetensors")
    (out / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    return out


def servable_state(state: dict, tied: bool) -> dict:
    """Every weight under the name vLLM's Llama loader looks for: the embeddings always (a tied checkpoint may
    hold them only as the output head), the output head only when it is a separate matrix."""
    state = dict(state)
    if EMBEDDINGS not in state:
        if not (tied and LM_HEAD in state):
            raise ModelLoadError(f"cannot export for vLLM: the weights have no {EMBEDDINGS} (and no tied {LM_HEAD})")
        state[EMBEDDINGS] = state[LM_HEAD]
    if tied:
        state.pop(LM_HEAD, None)  # vLLM ties it to the embeddings itself, as transformers' own checkpoints expect
    elif LM_HEAD not in state:
        raise ModelLoadError(f"cannot export for vLLM: the output head is not tied and {LM_HEAD} is missing")
    return state


def servable_config(config: dict, state: dict) -> dict:
    """The config with `architectures` named (vLLM picks its model class from it) and the weights' dtype."""
    config = dict(config)
    config.pop("quantization_config", None)  # the weights written are plain floats
    if not config.get("architectures"):
        model_type = config.get("model_type")
        if model_type not in ARCHITECTURES:
            raise ModelLoadError(f"cannot export a {model_type!r} model for vLLM: only {', '.join(ARCHITECTURES)} models are supported")
        config["architectures"] = [ARCHITECTURES[model_type]]
    dtype = str(state[EMBEDDINGS].dtype).removeprefix("torch.")
    config["dtype"] = dtype
    config.pop("torch_dtype", None)  # transformers 5 writes `dtype`; an old key beside it could disagree
    return config


def _read_folder(folder: Path) -> tuple[dict, dict]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    config_path, weights = folder / "config.json", folder / "model.safetensors"
    if not (config_path.is_file() and weights.is_file()):
        raise ModelLoadError(f"cannot export {folder} for vLLM: it needs config.json and model.safetensors")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    state = load_file(str(weights))
    with safe_open(str(weights), "pt") as handle:
        aliases = handle.metadata() or {}
    # save_model keeps a shared tensor once and records its other names here (as lean_llama reads it).
    for alias, stored in aliases.items():
        if alias not in state and stored in state:
            state[alias] = state[stored]
    return config, state


def _config_dict(config) -> dict:
    if isinstance(config, SimpleNamespace):  # lean_llama's config: config.json's own keys, head_dim filled in
        return dict(vars(config))
    return config.to_dict()


def _copy_tokenizer_files(folder: Path, out: Path) -> None:
    if not (folder / "tokenizer.json").is_file():
        raise ModelLoadError(f"cannot export {folder} for vLLM: it has no tokenizer.json")
    for name in TOKENIZER_FILES:
        if (folder / name).is_file() and folder.resolve() != out.resolve():
            shutil.copyfile(folder / name, out / name)


def _save_tokenizer(tokenizer, out: Path) -> None:
    folder = getattr(tokenizer, "folder", None)  # the engine's LeanTokenizer remembers the folder it read
    if folder is not None:
        _copy_tokenizer_files(Path(folder), out)
    else:
        tokenizer.save_pretrained(str(out))


def _write_weights(state: dict, path: Path) -> None:
    from safetensors.torch import save_file

    # Contiguous copies that share no storage: save_file refuses tensors that alias each other.
    tensors = {name: tensor.detach().to("cpu").contiguous().clone() for name, tensor in state.items()}
    save_file(tensors, str(path), metadata={"format": "pt"})
