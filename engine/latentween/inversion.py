"""Textual inversion of the whole prompt embedding (METHOD.md 3), and its on-disk cache.

Each keyframe gets its own copy of the full prompt embedding (every part of it: the (L, D) context,
and for SDXL, whose context holds both encoders' states, the pooled embedding too; families.Prompt)
and both share one negative embedding; all three are optimised with Adam (lr 1e-4) so that the guided prediction
eps_hat = eps(z_t; t, neg) + g (eps(z_t; t, c_image) - eps(z_t; t, neg)) matches the noise added to
lightly augmented views of the image, with t drawn from the middle third of the schedule. The
guided form is how the negative, shared by both images, gets a gradient at all.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from latentween.families import Prompt
from latentween.method import add_noise
from latentween.progress import Progress
from latentween.schedulers import prediction_target, training_coefficients

INVERSION_LR = 1e-4
VIEWS = 8  # augmented views encoded once per keyframe; each step draws one
CACHE_VERSION = 1


@dataclass
class InvertedPrompts:
    """Prompt embeddings for the first and second keyframe and the shared negative, one prompt each."""

    first: Prompt
    second: Prompt
    negative: Prompt
    loss_before: float = float("nan")
    loss_after: float = float("nan")
    cached: bool = False
    losses: list[float] = field(default_factory=list)


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random resized crop of 70-100% of the area and a light colour jitter (torchvision ops,
    parameters from our own generator so a seed fixes them)."""
    import torchvision.transforms.v2.functional as TF

    x = torch.from_numpy(image).permute(2, 0, 1)
    h, w = x.shape[1:]
    area = rng.uniform(0.7, 1.0) * h * w
    ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    ch, cw = min(h, int(round(np.sqrt(area / ratio)))), min(w, int(round(np.sqrt(area * ratio))))
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    x = TF.resized_crop(x, top, left, ch, cw, [h, w], antialias=True)
    x = TF.adjust_brightness(x, float(rng.uniform(0.9, 1.1)))
    x = TF.adjust_contrast(x, float(rng.uniform(0.9, 1.1)))
    x = TF.adjust_saturation(x, float(rng.uniform(0.9, 1.1)))
    return x.clamp(0, 1).permute(1, 2, 0).numpy()


def augmented_views(image: np.ndarray, count: int, seed: int) -> list[np.ndarray]:
    """The image itself, then `count - 1` augmented copies."""
    rng = np.random.default_rng(seed)
    return [image] + [augment(image, rng) for _ in range(count - 1)]


def guided_loss(unet, scheduler, z0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, cond: Prompt,
                negative: Prompt, guidance: float, condition) -> torch.Tensor:
    """|| eps_hat(alpha_t z0 + sigma_t eps; t, c, neg) - target ||^2, target eps, v or the flow velocity
    as the model predicts (latentween.schedulers). cond: one row per z0; `condition`: the family's
    conditioning (families.SD.guidance)."""
    a, s = (c.to(z0.device).view(-1, 1, 1, 1) for c in training_coefficients(scheduler, t))
    z_t = add_noise(z0, eps, a, s)
    target = prediction_target(scheduler, z0, eps, a, s)
    n = z0.shape[0]
    dtype = unet.dtype
    sample = torch.cat([z_t, z_t]).to(dtype)
    context = Prompt.cat([negative.repeat(n), cond]).to(dtype)
    out = unet(sample, torch.cat([t, t]), return_dict=False, **condition(context, sample))[0].float()
    pred = out[:n] + guidance * (out[n:] - out[:n])
    return torch.nn.functional.mse_loss(pred, target)


def _draw(views: Sequence[torch.Tensor], generator: torch.Generator, timesteps: int):
    """One view per keyframe, a middle-third timestep and a noise for each."""
    picks = [int(torch.randint(len(v), (1,), generator=generator)) for v in views]
    z0 = torch.stack([v[i] for v, i in zip(views, picks)])
    t = torch.randint(timesteps // 3, 2 * timesteps // 3, (len(views),), generator=generator)
    eps = torch.randn(z0.shape, generator=generator)
    return z0, t, eps


def invert_prompts(unet, scheduler, views: Sequence[torch.Tensor], cond: Prompt, negative: Prompt, *,
                   steps: int, guidance: float, condition, lr: float = INVERSION_LR, seed: int = 0,
                   callback: Optional[Callable[[dict], None]] = None,
                   should_cancel: Optional[Callable[[], bool]] = None) -> InvertedPrompts:
    """Optimise one prompt embedding per keyframe and a shared negative (module docstring).

    views: per keyframe, a (V, C, h, w) tensor of latents of augmented views. cond, negative: the
    starting embeddings (the encoded prompt and negative prompt), one prompt each. `condition`: the
    model family's unet_kwargs. The losses before and after are measured on one fixed set of
    (view, t, noise) draws, so they are comparable.
    """
    from latentween.errors import Cancelled

    device = views[0].device
    generator = torch.Generator(device="cpu").manual_seed(seed)
    timesteps = scheduler.config.num_train_timesteps
    fixed = [_draw(views, torch.Generator(device="cpu").manual_seed(seed + 1), timesteps) for _ in range(4)]
    params = [p.map(lambda x: torch.nn.Parameter(x.detach().float().clone())) for p in (cond, cond, negative)]
    optimizer = torch.optim.Adam([x for p in params for x in p.parts().values()], lr=lr)

    def loss_of(z0, t, eps) -> torch.Tensor:
        return guided_loss(unet, scheduler, z0.to(device), t.to(device), eps.to(device), Prompt.stack(params[:2]),
                           params[2], guidance, condition)

    def fixed_loss() -> float:
        with torch.no_grad():
            return float(np.mean([loss_of(*draw).item() for draw in fixed]))

    before = fixed_loss()
    losses = []
    with torch.enable_grad():
        for step in range(steps):
            if should_cancel is not None and should_cancel():
                raise Cancelled()
            loss = loss_of(*_draw(views, generator, timesteps))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if callback is not None:
                callback(Progress(stage="inversion", done=step + 1, total=steps).event())
    return InvertedPrompts(*(p.map(lambda x: x.detach()) for p in params), loss_before=before,
                           loss_after=fixed_loss(), losses=losses)


class EmbeddingCache:
    """Inverted prompts on disk, keyed by what determines them, so re-rolls and the daemon reuse them."""

    def __init__(self, folder: str | Path | None = None):
        if folder is None:
            folder = os.environ.get("LATENTWEEN_CACHE_DIR")
        if folder is None:
            import platformdirs

            folder = platformdirs.user_cache_dir("latentween")
        self.folder = Path(folder) / "inversion"

    @staticmethod
    def key(model_id: str, images: Sequence[np.ndarray], prompt: str, negative: str, steps: int, guidance: float,
            lr: float = INVERSION_LR, true_cfg: float = 1.0) -> str:
        digest = hashlib.sha256()
        for image in images:
            digest.update(str(image.shape).encode())
            digest.update(np.ascontiguousarray(image, dtype=np.float32).tobytes())
        payload = {"v": CACHE_VERSION, "model": model_id, "images": digest.hexdigest(), "prompt": prompt,
                   "negative": negative, "steps": steps, "guidance": guidance, "lr": lr, "views": VIEWS}
        if true_cfg != 1.0:  # flow families only; absent otherwise, so earlier entries keep their keys
            payload["true_cfg"] = true_cfg
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:40]

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.safetensors"

    def get(self, key: str) -> Optional[InvertedPrompts]:
        from safetensors.torch import load_file

        path = self.path(key)
        if not path.is_file():
            return None
        try:
            data = load_file(str(path))
        except Exception:  # a damaged entry is just a miss
            return None
        losses = data["losses"].tolist()
        prompts = [Prompt(data[name], data.get(f"{name}_pooled")) for name in ("first", "second", "negative")]
        return InvertedPrompts(*prompts, *losses, cached=True)

    def put(self, key: str, prompts: InvertedPrompts) -> None:
        from safetensors.torch import save

        from latentween.atomic import write_atomic

        self.folder.mkdir(parents=True, exist_ok=True)
        tensors = {"losses": torch.tensor([prompts.loss_before, prompts.loss_after])}
        for name in ("first", "second", "negative"):
            prompt = getattr(prompts, name)
            tensors[name] = prompt.hidden  # the name SD-family entries had before families
            if prompt.pooled is not None:
                tensors[f"{name}_pooled"] = prompt.pooled
        write_atomic(self.path(key), save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}))
