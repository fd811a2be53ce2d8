"""The verifier of a config: a model loaded here, or one on a server (`--verifier http://HOST:PORT/v1`)."""

from __future__ import annotations

from ..config import is_remote
from .loading import load_model
from .remote import connect


def load_verifier(config, progress=None):
    """A LoadedModel, or a RemoteVerifier for a server URL; every failure is an EngineError written for the user."""
    if is_remote(config.verifier):
        return connect(config, progress)
    return load_model(config.verifier, config.device, progress, config.trust_remote_code,
                      lean=config.forward != "transformers")
