"""The Hugging Face hub, as the model loaders meet it: whether it is reachable, and one clear line when
a model or file is neither cached nor downloadable (no retries against an absent network)."""
from __future__ import annotations

import os
import re
import socket
from urllib.parse import urlparse

from latentween.errors import ModelError, one_line

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def hub_reachable() -> bool:
    """Whether the hub's host resolves; an offline workstation then fails fast instead of retrying."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
        return True
    except OSError:
        return False


def missing_message(spec: str, reason: str) -> str:
    return (f"model {spec!r} is not on this machine and could not be downloaded ({reason}); "
            f"give a local folder or .safetensors file with --model, or download it while online with "
            f"`hf download {spec}` (set HF_HUB_OFFLINE=1 to skip network look-ups)")




def check_hub_model(spec: str, local_only: bool) -> None:
    """Fail with one clear line before diffusers retries every component against an absent hub."""
    from huggingface_hub import try_to_load_from_cache

    if local_only and not isinstance(try_to_load_from_cache(spec, "model_index.json"), str):
        raise ModelError(missing_message(spec, "no network and not in the Hugging Face cache"))


def hub_file(repo: str, filename: str, what: str, flag: str) -> str:
    """A file of a hub repo from the cache or a download; one clear error when neither works."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(repo, filename)
    if isinstance(cached, str):
        return cached
    if not HUB_ID.match(repo):
        raise ModelError(f"{what} {repo!r} is neither a local path nor a hub id like owner/name")
    if not hub_reachable():
        raise ModelError(f"{what} {repo!r} is not on this machine and cannot be downloaded (no network); "
                         f"give a local path with {flag}, or download it while online with `hf download {repo} {filename}`")
    try:
        return hf_hub_download(repo, filename)
    except Exception as exc:
        raise ModelError(f"cannot download {what} {repo}/{filename}: {one_line(exc)}") from exc
