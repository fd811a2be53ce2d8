"""Is the Hugging Face hub worth asking? Checked before loading a hub id, so an unknown name fails in seconds
offline instead of after transformers' network retries (~40 s)."""

from __future__ import annotations

import os
import socket
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

TIMEOUT_S = 1.5


def offline_by_setting() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_reachable(timeout: float = TIMEOUT_S) -> bool:
    """A TCP connection to the hub's host within `timeout` (name lookup included); False when offline by setting."""
    if offline_by_setting():
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (80 if endpoint.scheme == "http" else 443)

    def connect() -> bool:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            return True
        except OSError:
            return False

    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(connect).result(timeout=timeout + 0.5)  # a name lookup ignores the socket timeout
    except Exception:
        return False
    finally:
        pool.shutdown(wait=False)


def cached_locally(repo_id: str) -> bool:
    """The hub id already has a config in the local Hugging Face cache (usable without the network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # not a valid repo id, or no huggingface_hub: let the normal path explain
        return False
