"""CLIP ranking of candidates (METHOD.md 5): keep the one with the highest
cos(image, positive text) - cos(image, negative text), images normalised the way the model expects;
beyond the paper, ranking on consistency with the motion field, alone or with CLIP (latentween.consistency)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np

from latentween.errors import ModelError, loading

DIGITS = 6  # digits kept of a recorded candidate score (manifest)


class ClipRanker:
    """An open_clip model with its own preprocessing and tokenizer."""

    def __init__(self, model, preprocess, tokenizer, device):
        self.model, self.preprocess, self.tokenizer, self.device = model, preprocess, tokenizer, device
        self._texts: dict[tuple[str, str], object] = {}

    @classmethod
    def load(cls, spec: str, device) -> "ClipRanker":
        """`spec`: 'ARCH:PRETRAINED' (e.g. ViT-L-14:openai) or a folder holding open_clip_config.json
        and weights (open_clip's own hub layout)."""
        import open_clip

        path = Path(spec).expanduser()
        if path.is_dir():
            name, pretrained = f"local-dir:{path.resolve()}", None
            if not (path / "open_clip_config.json").is_file():
                raise ModelError(f"CLIP model folder {spec!r} has no open_clip_config.json")
        else:
            name, _, pretrained = spec.partition(":")
            check_clip_weights(name, pretrained or None, spec)
        with loading(f"CLIP model {spec!r}"):
            model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained or None, device=device)
            tokenizer = open_clip.get_tokenizer(name)
        model.eval().requires_grad_(False)
        return cls(model, preprocess, tokenizer, device)

    def _text_features(self, positive: str, negative: str):
        import torch

        key = (positive, negative)
        if key not in self._texts:
            with torch.inference_mode():
                features = self.model.encode_text(self.tokenizer([positive, negative]).to(self.device)).float()
            self._texts[key] = features / features.norm(dim=-1, keepdim=True)
        return self._texts[key]

    def scores(self, images: list[np.ndarray], positive: str, negative: str) -> list[float]:
        """cos(image, positive) - cos(image, negative) for float (H, W, 3) images in [0, 1]."""
        import torch
        from PIL import Image

        text = self._text_features(positive, negative)
        batch = torch.stack([self.preprocess(Image.fromarray(np.round(im * 255).astype(np.uint8))) for im in images])
        with torch.inference_mode():
            features = self.model.encode_image(batch.to(self.device)).float()
        features = features / features.norm(dim=-1, keepdim=True)
        sims = features @ text.T
        return (sims[:, 0] - sims[:, 1]).cpu().tolist()


def clip_chooser(ranker: ClipRanker, positive: str, negative: str) -> Callable:
    """A pipeline chooser: the argmax of the CLIP score, with every candidate's score."""

    def choose(frame, images):
        scores = ranker.scores(images, positive, negative)
        return int(np.argmax(scores)), [round(s, DIGITS) for s in scores]

    return choose


def consistency_chooser(ranker: Optional[ClipRanker] = None, positive: str = "", negative: str = "",
                        weight: float = 1.0) -> Callable:
    """A pipeline chooser on consistency scores (latentween.consistency): alone without a `ranker`
    (--choose consistency), else CLIP and consistency each standardised over the frame's candidates and
    summed, consistency times `weight` (--choose clip+consistency). It takes the candidates' consistency
    scores as a third argument and returns (chosen, used scores, score parts by name)."""
    from latentween.consistency import used_scores

    def choose(frame, images, consistency):
        parts = {}
        if ranker is not None:
            parts["clip"] = [round(s, DIGITS) for s in ranker.scores(images, positive, negative)]
        parts["consistency"] = list(consistency)
        scores = used_scores(parts, {"clip": 1.0, "consistency": weight})
        return int(np.argmax(scores)), scores, parts

    choose.uses_consistency = True
    return choose


def check_clip_weights(name: str, pretrained: str | None, spec: str) -> None:
    """Fail fast, naming the way out, when a tagged CLIP's weights are neither cached nor downloadable."""
    import open_clip

    if name not in open_clip.list_models():
        raise ModelError(f"unknown CLIP architecture {name!r} in --clip-model {spec!r}")
    if not pretrained:
        raise ModelError(f"--clip-model {spec!r} names no weights; use ARCH:PRETRAINED (e.g. ViT-L-14:openai) or a folder")
    cfg = open_clip.get_pretrained_cfg(name, pretrained)
    if not cfg:
        raise ModelError(f"open_clip has no weights {pretrained!r} for {name!r}")
    from latentween.hub import hub_reachable

    if hub_reachable():
        return
    from huggingface_hub import try_to_load_from_cache

    parts = cfg.get("hf_hub", "").strip("/").split("/")
    repo, sub = "/".join(parts[:2]), "/".join(parts[2:])
    names = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
    if len(parts) < 2 or not any(isinstance(try_to_load_from_cache(repo, f"{sub}/{n}" if sub else n), str) for n in names):
        raise ModelError(f"CLIP weights {spec!r} are not on this machine and cannot be downloaded (no network); "
                         f"pass --clip-model with a local open_clip folder, or --candidates 1 to turn ranking off")
