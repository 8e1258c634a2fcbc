"""Fail fast when a hub id cannot be reached: huggingface_hub retries a missing network for
about a minute before its error, which names no cause a user can act on."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

from huggingface_hub import constants, try_to_load_from_cache
from huggingface_hub.errors import HFValidationError

PROBE_TIMEOUT_SECONDS = 3.0


def _hub_reachable(endpoint: str) -> bool:
    parsed = urlparse(endpoint)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=PROBE_TIMEOUT_SECONDS):
            return True
    except OSError:
        return False


def check_hub_source(source: str, key: str) -> None:
    """`source` is not a local directory: it must be cached, or the hub must be reachable."""
    try:
        if isinstance(try_to_load_from_cache(source, "config.json"), str):
            return
    except HFValidationError as exc:
        raise FileNotFoundError(
            f"{key}={source!r} is neither a local directory (looked in {os.getcwd()}) nor a "
            f"valid hub id ({exc})"
        ) from exc
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    endpoint = constants.ENDPOINT
    if offline or not _hub_reachable(endpoint):
        why = "HF_HUB_OFFLINE is set" if offline else f"the hub ({endpoint}) is unreachable"
        raise FileNotFoundError(
            f"{key}={source!r} is not a local directory (looked in {os.getcwd()}), it is not "
            f"in the local hub cache, and {why}. Give the path of a save_pretrained directory, "
            "or make the hub reachable (HF_ENDPOINT names a mirror)."
        )
