"""Checks a drafter spec before any model loads: a hub id that cannot be fetched fails in a second or two, not
after the verifier has loaded (21 s on the embedded model's first start)."""

from __future__ import annotations

from pathlib import Path

from ..config import SpecConfig
from ..errors import ModelLoadError


def check_drafter_spec(config: SpecConfig) -> None:
    """Raise ModelLoadError (the message load_model would give) for a drafter model that cannot be loaded."""
    from ..drafting.drafters import built_in
    from .hub import cached_locally, hub_reachable
    from .loading import EMBEDDED, _explain_missing

    spec = config.drafter.strip()
    if spec == "auto" or spec in EMBEDDED or built_in(spec) is not None:
        return  # built from the verifier, or the embedded model: nothing to fetch
    path = Path(spec).expanduser()
    if spec.lower().endswith(".gguf"):
        if not path.is_file():
            raise ModelLoadError(f"no such .gguf file: {spec}")
        return
    if spec.startswith((".", "/", "~")) or path.exists():
        return  # a local folder: load_model says what is wrong with it
    if not cached_locally(spec) and not hub_reachable():
        raise ModelLoadError(_explain_missing(spec, OSError("offline: the hub cannot be reached")))
