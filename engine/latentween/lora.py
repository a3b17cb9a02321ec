"""LoRA weights on a loaded model for the length of one job, through diffusers' own LoRA loading.

Few-step LoRAs (LCM, TCD, Hyper-SD, Turbo-style) and style LoRAs alike: `--lora PATH_OR_ID[:SCALE]`.
They run beside the base weights while the job runs and are unloaded afterwards, since the model
manager keeps the same model loaded for the next job. Not fused: fusing and unfusing adds and
subtracts a delta, which need not give back the very same bits, and the next job's frames must not
depend on which LoRAs ran before it.
"""
from __future__ import annotations

import hashlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from latentween.errors import ModelError

WEIGHT_NAME = "pytorch_lora_weights.safetensors"


def parse(spec: str) -> tuple[str, float]:
    """'path/or/id[:scale]' -> (location, scale); a Windows drive letter is not a scale."""
    location, sep, tail = spec.rpartition(":")
    if sep and location and tail:
        try:
            return location, float(tail)
        except ValueError:
            pass
    return spec, 1.0


def _weights_file(location: str) -> Path | None:
    path = Path(location).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        files = sorted(path.glob("*.safetensors"))
        return path / WEIGHT_NAME if (path / WEIGHT_NAME).is_file() else (files[0] if files else None)
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(location, WEIGHT_NAME)
    except Exception:  # not a valid repo id: reported by the loader below
        return None
    return Path(cached) if isinstance(cached, str) else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def applied(components, specs: Sequence[str]) -> Iterator[list[dict]]:
    """Load and weight the LoRAs on `components` for the block; yields what was applied (spec, scale,
    file, sha256) for the manifest, and leaves the model exactly as it was afterwards."""
    if not specs:
        yield []
        return
    holder = _holder(components)
    report, names, scales = [], [], []
    try:
        for number, spec in enumerate(specs):
            location, scale = parse(spec)
            path = _weights_file(location)
            name = f"lora{number}"
            try:
                if path is not None:
                    holder.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=name)
                else:
                    holder.load_lora_weights(location, adapter_name=name)
                    path = _weights_file(location)
            except Exception as exc:  # diffusers, peft and the hub raise many types; one line for the user
                text = str(exc).strip().splitlines()
                raise ModelError(f"cannot load LoRA {spec!r}: {(text[0] if text else type(exc).__name__)[:300]}") from exc
            names.append(name)
            scales.append(scale)
            report.append({"spec": spec, "scale": scale, "file": str(path) if path else None,
                           "sha256": _sha256(path) if path and path.is_file() else None})
        holder.set_adapters(names, adapter_weights=scales)
        yield report
    finally:
        holder.unload_lora_weights()


def _holder(components):
    """diffusers' LoRA loader lives on pipelines: the family's pipeline class, borrowing the loaded components."""
    import diffusers

    from latentween.families import FAMILIES

    family = FAMILIES[components.family](components)
    return getattr(diffusers, family.pipeline_class)(**family.pipeline_parts(components))
