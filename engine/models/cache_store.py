"""The on-disk cache of dequantized GGUF models: written atomically, checked before use, never fatal.

A cache folder is trusted only if its config.json holds sane values and its weights file's header matches them;
anything else is removed and rebuilt (a truncated file, a hand-edited config, a different version's layout).
A cache that cannot be written (full disk, read-only or misconfigured folder) means no cache this time: the
model still loads, and the caller gets one sentence to show the user.
Staging folders are named `.partial-<pid>-...`; one whose process is gone (a killed first start: ~540 MB) is
removed at the next start. Entries are keyed by the GGUF's contents; another entry of the same model left unused
for two weeks (an older transformers' layout) is removed when a new one is written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

PARTIAL = ".partial-"
STALE_AFTER_S = 3600  # a staging folder without a pid in its name (older versions): stale after an hour
UNUSED_AFTER_S = 14 * 24 * 3600  # another entry of the same model (an older transformers' layout) unused this long
_POSITIVE = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")


def problem(folder: Path) -> str | None:
    """Why `folder` is not a usable cache (None: it looks whole). Reads the config and the weights' header only."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return f"config.json unreadable ({error})"
    if not isinstance(config, dict):
        return "config.json is not an object"
    for key in _POSITIVE:
        value = config.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            return f"config.json: {key} is {value!r}"
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads", heads)
    if not isinstance(kv_heads, int) or kv_heads <= 0 or heads % kv_heads:
        return f"config.json: num_key_value_heads is {kv_heads!r}"
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    if not isinstance(head_dim, int) or head_dim <= 0:
        return f"config.json: head_dim is {head_dim!r}"
    if not (folder / "tokenizer.json").is_file():
        return "tokenizer.json missing"
    try:
        from safetensors import safe_open

        with safe_open(str(folder / "model.safetensors"), "pt") as handle:
            keys = set(handle.keys())
            embed = "model.embed_tokens.weight"
            shape = tuple(handle.get_slice(embed).get_shape()) if embed in keys else None
    except Exception as error:  # safetensors raises its own error type for a damaged header
        return f"model.safetensors unreadable ({error})"
    if shape is not None and shape != (config["vocab_size"], config["hidden_size"]):
        return f"model.safetensors: embeddings {shape} do not match config.json"
    return None


def discard_if_invalid(folder: Path) -> str | None:
    """Remove a cache folder that is present but not usable, so it is rebuilt; returns why, if it was removed."""
    if not folder.exists():
        return None
    why = problem(folder)
    if why is not None:
        shutil.rmtree(folder, ignore_errors=True)
    return why


def clean_stale_partials(parent: Path) -> list[Path]:
    """Remove staging folders left by killed processes; a live process's staging folder is left alone."""
    return _remove_folders(parent, lambda entry: entry.name.startswith(PARTIAL) and _stale(entry))


def mark_used(folder: Path) -> None:
    """Record that a cache folder was used now (its mtime), so pruning spares entries still in use."""
    try:
        os.utime(folder)
    except OSError:
        pass


def prune_unused_siblings(folder: Path, stem: str, unused_after_s: float = UNUSED_AFTER_S) -> list[Path]:
    """After writing `folder`: remove other entries of the same model (`<stem>-<12 hex digits>`) unused for
    `unused_after_s`, e.g. left by an older transformers version. Another install still using its entry keeps it."""
    sibling = re.compile(re.escape(stem) + r"-[0-9a-f]{12}")
    now = time.time()
    return _remove_folders(folder.parent, lambda entry: entry != folder and sibling.fullmatch(entry.name) is not None
                           and now - entry.stat().st_mtime > unused_after_s)


def _remove_folders(parent: Path, remove) -> list[Path]:
    """Remove the sub-folders of `parent` for which `remove(entry)` is true; a folder that vanishes meanwhile or
    cannot be read is skipped."""
    removed = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        try:
            if not (entry.is_dir() and remove(entry)):
                continue
        except OSError:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def _stale(entry: Path) -> bool:
    pid_text = entry.name[len(PARTIAL):].split("-", 1)[0]
    if pid_text.isdigit():
        return not _alive(int(pid_text))
    try:
        return time.time() - entry.stat().st_mtime > STALE_AFTER_S
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        return True
    return True


def writable(parent: Path) -> bool:
    """Whether the cache's folder can be created and written (checked before a ~30 s dequantization)."""
    probe = parent
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def store(write, target: Path) -> str | None:
    """Write a cache folder atomically: `write(staging)` fills a staging folder, renamed to `target` at the end.

    Returns None when cached, or the sentence to show when it could not be (nothing half-written is left).
    """
    staging = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f"{PARTIAL}{os.getpid()}-"))
        write(staging)
        os.replace(staging, target)  # renamed last: a crash never leaves a cache that looks complete
        return None
    except Exception as error:  # OSError, and safetensors' own SafetensorError for a full disk
        return f"no cache this time: cannot write {target.parent} ({_reason(error)}); the next start prepares the model again"
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _reason(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error)
    if "No space left" in text or "StorageFull" in text:
        return "No space left on device"
    return text.strip().splitlines()[0][:120] if text.strip() else type(error).__name__
