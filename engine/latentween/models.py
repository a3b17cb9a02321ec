"""The model manager: finds, loads and keeps diffusion models; owns devices and dtypes.

A model is named the way users of diffusers, A1111 or ComfyUI name it: a Hugging Face hub id, a
local diffusers folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/), a
single-file checkpoint (.safetensors / .ckpt), or `toy` (the small model shipped in the package).
Components load one by one through diffusers/transformers `from_pretrained`, so a hub model never
downloads parts the method does not use (the safety checker, for one).
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from latentween import toyworld
from latentween.errors import ModelError, one_line, loading
from latentween.hub import HUB_ID as _HUB_ID, check_hub_model, hub_file, hub_reachable, missing_message
from latentween.families import FAMILIES, family_of_index, family_of_keys, recommended_settings
from latentween.settings import RuntimeSettings

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".bin")


@dataclass
class ModelSource:
    """Where a model comes from: kind is 'folder', 'single-file' or 'hub'."""

    spec: str
    kind: str
    location: str


@dataclass
class Components:
    """A loaded latent diffusion model: what the interpolation pipeline needs, nothing more."""

    source: ModelSource
    unet: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    scheduler_config: dict
    device: Any
    dtype: Any
    extras: dict = field(default_factory=dict)
    family: str = "sd"  # latentween.families: sd (1.x/2.x), sdxl or flux (`unet` is then a flux.PackedTransformer)
    text_encoder_2: Any = None  # SDXL's second encoder (CLIPTextModelWithProjection) or Flux's T5, and its tokenizer
    tokenizer_2: Any = None

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def native_size(self) -> int:
        """The short side, in pixels, the model was trained at (512 for SD 1.5); a transformer's config
        does not say, its VAE's does (1024 for Flux)."""
        size = self.unet.config.get("sample_size")
        if size is None:
            return int(self.vae.config.sample_size)
        size = size[0] if isinstance(size, (list, tuple)) else size
        return int(size) * self.vae_scale_factor


# The shipped toy-world models: names the product resolves without a path (latentween.toyworld)
TOY_MODELS = {"toy": toyworld.MODEL_DIR, "toy-shapes": toyworld.SHAPES_MODEL_DIR}


def toy_model_dir(name: str = "toy") -> Path:
    return TOY_MODELS[name]


def resolve_model(spec: str) -> ModelSource:
    """Decide what `spec` names, without loading anything. Raises ModelError for a bad name."""
    if spec in TOY_MODELS:
        path = toy_model_dir(spec)
        if not (path / "model_index.json").is_file():
            raise ModelError(f"the {spec} model is missing from this installation ({path})")
        return ModelSource(spec, "folder", str(path))
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelError(f"model folder {spec!r} has no model_index.json: not a diffusers folder")
        return ModelSource(spec, "folder", str(path.resolve()))
    if path.is_file():
        if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
            raise ModelError(f"model file {spec!r} is not a checkpoint ({', '.join(SINGLE_FILE_SUFFIXES)})")
        return ModelSource(spec, "single-file", str(path.resolve()))
    if path.suffix.lower() in SINGLE_FILE_SUFFIXES or os.sep in spec.strip("/") and not _HUB_ID.match(spec):
        raise ModelError(f"model file {spec!r} does not exist")
    if _HUB_ID.match(spec):
        return ModelSource(spec, "hub", spec)
    raise ModelError(f"model {spec!r} is neither a local folder, a checkpoint file, nor a hub id like owner/name")


RECOMMENDATIONS_FILE = "latentween.json"


def read_recommendations(source: ModelSource) -> dict:
    """Settings a model folder recommends for itself (its latentween.json, e.g. a Turbo model's steps and
    guidance); used where the user set nothing (MorphSettings.with_defaults). A broken file is an error."""
    if source.kind != "folder":
        return {}
    family = recommended_settings(Path(source.location))
    path = Path(source.location) / RECOMMENDATIONS_FILE
    if not path.is_file():
        return family
    import json

    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is not readable JSON: {exc}") from exc
    if not isinstance(values, dict):
        raise ModelError(f"{path} must hold a JSON object of settings")
    return {**family, **values}


def pick_device(requested: str = "auto"):
    import torch

    if requested != "auto":
        try:
            device = torch.device(requested)
        except RuntimeError as exc:
            raise ModelError(f"unknown device {requested!r}") from exc
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ModelError(f"device {requested!r} asked for, but CUDA is not available here")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ModelError(f"device {requested!r} asked for, but MPS is not available here")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(requested: str, device):
    import torch

    if requested != "auto":
        return getattr(torch, requested)
    # fp16 where it is fast and well trodden; MPS and CPU keep fp32 (fp16 VAEs give NaNs there).
    return torch.float16 if device.type == "cuda" else torch.float32


def configure_determinism(device) -> None:
    """The old name of latentween.runtime.configure_torch, for scripts that call it (benchmarks): the
    flags are process-wide, so the model manager no longer sets them; the entry points do."""
    if device.type == "cuda":
        from latentween.runtime import configure_torch

        configure_torch()


def load_components(source: ModelSource, device, dtype, checkpoint_config: Optional[str] = None) -> Components:
    """Load unet, vae, text encoder, tokenizer and scheduler config; every failure is one ModelError."""
    import torch

    _quiet_libraries()
    try:
        if source.kind == "single-file":
            parts = _load_single_file(source, dtype, checkpoint_config)
        else:
            parts = _load_pretrained(source, dtype)
    except ModelError:
        raise
    except Exception as exc:  # diffusers/transformers/hub raise many types; the user needs one line
        from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

        if isinstance(exc, (LocalEntryNotFoundError, RepositoryNotFoundError)) or "offline" in str(exc).lower():
            raise ModelError(missing_message(source.spec, one_line(exc))) from exc
        raise ModelError(f"cannot load model {source.spec!r}: {one_line(exc)}") from exc
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        if parts.get(name) is not None:
            parts[name].to(device).eval().requires_grad_(False)
    vae = parts["vae"]
    if vae.dtype == torch.float16 and getattr(vae.config, "force_upcast", False):
        vae.to(torch.float32)
    return Components(source, parts["unet"], vae, parts["text_encoder"], parts["tokenizer"],
                      dict(parts["scheduler_config"]), device, dtype, extras=parts.get("extras", {}),
                      family=parts["family"], text_encoder_2=parts.get("text_encoder_2"),
                      tokenizer_2=parts.get("tokenizer_2"))


def _quiet_libraries() -> None:
    """Loading bars and warnings of diffusers/transformers would drown our own progress and errors."""
    import diffusers
    import transformers

    for lib in (diffusers, transformers):
        lib.utils.logging.set_verbosity_error()
        lib.utils.logging.disable_progress_bar()


def _load_pretrained(source: ModelSource, dtype):
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import AutoTokenizer, CLIPTextModel

    location = source.location
    local_only = source.kind == "folder" or not hub_reachable()
    if source.kind == "hub":
        check_hub_model(source.spec, local_only)
    common = dict(local_files_only=local_only)
    index = _read_model_index(location, local_only)
    parts: dict = {"family": family_of_index(index, source.spec)}
    if parts["family"] == "flux":
        from latentween.flux import load_flux

        return {**parts, **load_flux(location, dtype, common)}
    parts["unet"] = UNet2DConditionModel.from_pretrained(location, subfolder="unet", torch_dtype=dtype, **common)
    parts["vae"] = AutoencoderKL.from_pretrained(location, subfolder="vae", torch_dtype=dtype, **common)
    parts["text_encoder"] = CLIPTextModel.from_pretrained(location, subfolder="text_encoder", dtype=dtype, **common)
    parts["tokenizer"] = AutoTokenizer.from_pretrained(location, subfolder="tokenizer", **common)
    if parts["family"] == "sdxl":
        from transformers import CLIPTextModelWithProjection

        parts["text_encoder_2"] = CLIPTextModelWithProjection.from_pretrained(location, subfolder="text_encoder_2",
                                                                              dtype=dtype, **common)
        parts["tokenizer_2"] = AutoTokenizer.from_pretrained(location, subfolder="tokenizer_2", **common)
        parts["extras"] = {"force_zeros_for_empty_prompt": bool(index.get("force_zeros_for_empty_prompt", True))}
    # the config as written, class name included: a distilled model's folder names its sampler
    parts["scheduler_config"] = DDIMScheduler.load_config(location, subfolder="scheduler", **common)
    return parts


def _read_model_index(location: str, local_only: bool) -> dict:
    import json

    path = Path(location) / "model_index.json"
    if not path.is_file():
        from huggingface_hub import hf_hub_download

        path = Path(hf_hub_download(location, "model_index.json", local_files_only=local_only))
    return json.loads(path.read_text())


def load_controlnet(spec: str, device, dtype):
    """An OpenPose ControlNet from a hub id, a diffusers folder or a single file (SD and SDXL ones);
    a folder's config names its class (ControlNetModel, or FluxControlNetModel for Flux)."""
    import diffusers

    _quiet_libraries()
    path = Path(spec).expanduser()
    with loading(f"ControlNet {spec!r}"):
        if path.is_file():
            model = diffusers.ControlNetModel.from_single_file(str(path), torch_dtype=dtype)
        elif path.is_dir() or not _HUB_ID.match(spec):
            if not (path / "config.json").is_file():
                raise ModelError(f"ControlNet {spec!r} is not a diffusers ControlNet folder or file")
            model = _controlnet_class(path / "config.json").from_pretrained(str(path), torch_dtype=dtype)
        else:
            config = hub_file(spec, "config.json", "ControlNet", "--controlnet")
            model = _controlnet_class(Path(config)).from_pretrained(spec, torch_dtype=dtype,
                                                                   local_files_only=not hub_reachable())
    model.to(device).eval().requires_grad_(False)
    return model


def _controlnet_class(config: Path):
    import json

    import diffusers

    name = json.loads(config.read_text()).get("_class_name")
    return diffusers.FluxControlNetModel if name == "FluxControlNetModel" else diffusers.ControlNetModel


def load_preview_vae(spec: str, device, dtype):
    """A small decoder for early-ranking previews: diffusers' AutoencoderTiny (TAESD) from a hub id or folder."""
    from diffusers import AutoencoderTiny

    _quiet_libraries()
    path = Path(spec).expanduser()
    with loading(f"preview VAE {spec!r}"):
        if path.is_dir():
            model = AutoencoderTiny.from_pretrained(str(path), torch_dtype=dtype)
        elif _HUB_ID.match(spec):
            hub_file(spec, "config.json", "preview VAE", "--preview-vae")
            model = AutoencoderTiny.from_pretrained(spec, torch_dtype=dtype, local_files_only=not hub_reachable())
        else:
            raise ModelError(f"preview VAE {spec!r} is neither a diffusers AutoencoderTiny folder nor a hub id")
    model.to(device).eval().requires_grad_(False)
    return model


def _load_single_file(source: ModelSource, dtype, checkpoint_config: Optional[str]):
    import diffusers

    family = family_of_keys(_checkpoint_keys(source.location), source.spec)
    pipeline_class = getattr(diffusers, FAMILIES[family].pipeline_class)
    kwargs: dict = dict(torch_dtype=dtype)
    if family == "sd":
        kwargs.update(safety_checker=None, feature_extractor=None)
    if checkpoint_config:
        kwargs["config"] = checkpoint_config
    kwargs["local_files_only"] = bool(checkpoint_config) or not hub_reachable()
    try:
        pipe = pipeline_class.from_single_file(source.location, **kwargs)
    except Exception as exc:
        if kwargs["local_files_only"] and not checkpoint_config:
            raise ModelError(
                f"single-file checkpoint {source.spec!r} needs its diffusers configs, which are not cached and "
                f"cannot be downloaded here ({one_line(exc)}); pass --checkpoint-config DIR with a diffusers folder "
                f"of the same architecture") from exc
        raise
    parts = {"family": family, "unet": pipe.unet, "vae": pipe.vae, "text_encoder": pipe.text_encoder,
             "tokenizer": pipe.tokenizer,
             "scheduler_config": {**pipe.scheduler.config, "_class_name": type(pipe.scheduler).__name__}}
    if family == "sdxl":
        parts.update(text_encoder_2=pipe.text_encoder_2, tokenizer_2=pipe.tokenizer_2,
                     extras={"force_zeros_for_empty_prompt": bool(pipe.config.get("force_zeros_for_empty_prompt", True))})
    return parts


def _checkpoint_keys(path: str) -> list[str]:
    """Tensor names of a single-file checkpoint, read from the header (safetensors) without the weights;
    other formats are pickles, whose names only a full load would tell: they are taken as SD."""
    if not path.lower().endswith(".safetensors"):
        return []
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as f:
            return list(f.keys())
    except Exception as exc:
        raise ModelError(f"model file {path!r} is not a readable .safetensors checkpoint: {one_line(exc)}") from exc


class ModelManager:
    """Loads models on demand and keeps the `max_loaded` most recently used ones, thread-safely."""

    def __init__(self, runtime: Optional[RuntimeSettings] = None, max_loaded: int = 1):
        self.runtime = runtime or RuntimeSettings()
        self.device = pick_device(self.runtime.device)
        self.dtype = pick_dtype(self.runtime.dtype, self.device)
        self.max_loaded = max(1, max_loaded)
        self._loaded: "dict[str, OrderedDict[str, Any]]" = {}
        self._lock = threading.Lock()

    def get(self, spec: str) -> Components:
        """The diffusion model named `spec` (hub id, folder, single file, 'toy' or 'toy-shapes')."""
        source = resolve_model(spec)
        return self._cached("model", f"{source.kind}:{source.location}", lambda: load_components(
            source, self.device, self.dtype, self.runtime.checkpoint_config))

    def controlnet(self, spec: str):
        return self._cached("controlnet", spec, lambda: load_controlnet(spec, self.device, self.dtype))

    def preview_vae(self, spec: str):
        return self._cached("preview_vae", spec, lambda: load_preview_vae(spec, self.device, self.dtype))

    def clip(self, spec: str):
        from latentween.ranking import ClipRanker

        return self._cached("clip", spec, lambda: ClipRanker.load(spec, self.device))

    def pose_detector(self, spec: str):
        from latentween.pose import PoseDetector

        return self._cached("pose", spec, lambda: PoseDetector.load(spec, self.device))

    def _cached(self, kind: str, key: str, load):
        """LRU per kind of model: at most `max_loaded` of each stay loaded."""
        with self._lock:
            cache = self._loaded.setdefault(kind, OrderedDict())
            if key in cache:
                cache.move_to_end(key)
                return cache[key]
            while len(cache) >= self.max_loaded:
                cache.popitem(last=False)
                _free_memory(self.device)
            cache[key] = value = load()
            return value

    def loaded(self, kind: str = "model") -> list[str]:
        """Specs of the loaded models of one kind, least recently used first."""
        with self._lock:
            cache = self._loaded.get(kind, {})
            return [v.source.spec if isinstance(v, Components) else k for k, v in cache.items()]


def _free_memory(device) -> None:
    import gc

    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
