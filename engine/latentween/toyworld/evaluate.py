"""`latentween eval`: the paper's comparison (METHOD.md 6) reproduced in a toy world (worlds.py).

Every scheme runs on the same seeded keyframe pairs through the product's own path (run_morph, the
model manager, files on disk), and every frame is scored analytically by the world's scorer (the
disks world's below; the shapes world's per object, worlds.Shapes):
- on-manifold rate of the in-between frames (the realism the paper's FID stands for);
- in-betweenness: lambda of each frame's fitted disk between the keyframes' (metrics.inbetweenness),
  |lambda - f|, the share with lambda in [0, 1], the distance to the nearest keyframe, and the
  "true in-between" rate: on-manifold and |lambda - f| <= 0.1;
- smoothness: PPL (sum of adjacent distances) and PDV (their std) in fitted-parameter space and in
  the model's own VAE latent space (L2 of the flattened latents), and monotonicity;
- endpoint exactness (the output's first/last frame against the input files) and cost;
- why each other frame fails (failures.classify), how the in-betweens' look and end steps differ
  from the keyframes' (edges: the "pop at the ends"), and worst.png, the pairs that fail most.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from . import breakdown_report, edges, failures, worlds
from .defaults import shared_default
from .failures import TRUE_INBETWEEN

SCHEMES = ("ours", "interpolate-only", "interpolate-denoise", "did", "did-no-shared-noise", "ours-aligned")


@dataclass
class EvalConfig:
    """Settings shared with a morph job default as toyworld.defaults says; the rest are eval's own."""

    world: str = "disks"  # worlds.WORLDS
    model: Optional[str] = shared_default("model")  # None: the world's shipped model (toy, toy-shapes)
    pairs: int = 50
    frames: int = shared_default("frames")
    schemes: Sequence[str] = SCHEMES
    steps: int = shared_default("steps")
    guidance: float = shared_default("guidance")
    seed: int = shared_default("seed")
    min_noise: float = shared_default("min_noise")
    max_noise: float = shared_default("max_noise")
    noise_sweep: Sequence[tuple[float, float]] = ()
    # (scheduler, steps) pairs to run ours-aligned at: the quality-vs-cost curve (samplers.png)
    samplers: Sequence[tuple[str, int]] = ()
    scheduler: str = shared_default("scheduler")
    dtype: str = shared_default("dtype")
    distance: Optional[tuple[float, float]] = None  # px each object moves; None: the world's own range
    grid_pairs: int = 4
    worst_pairs: int = 6


@dataclass
class SchemeResult:
    """Raw per-frame facts of one scheme; `summary` turns them into the report's numbers."""

    name: str
    fractions: list[float]
    on: list[list[bool]] = field(default_factory=list)           # [pair][in-between]
    lam: list[list[Optional[float]]] = field(default_factory=list)
    near: list[list[Optional[float]]] = field(default_factory=list)
    ppl: list[float] = field(default_factory=list)
    pdv: list[float] = field(default_factory=list)
    ppl_latent: list[float] = field(default_factory=list)
    pdv_latent: list[float] = field(default_factory=list)
    monotone: list[float] = field(default_factory=list)
    kinds: list[list[Optional[str]]] = field(default_factory=list)  # failures.classify per in-between
    look_inbetweens: list[Optional[dict]] = field(default_factory=list)  # edges.frame_measures
    look_keyframes: list[Optional[dict]] = field(default_factory=list)
    end_steps: list[tuple[float, float, float]] = field(default_factory=list)
    endpoint_error: float = 0.0
    seconds: float = 0.0
    unet_evaluations: int = 0
    frames_made: int = 0

    def add_sequence(self, on, lam, near, kinds) -> None:
        """One pair's in-betweens: on-manifold, lambda, nearest-keyframe distance and failure kind of each."""
        self.on.append(on)
        self.lam.append(lam)
        self.near.append(near)
        self.kinds.append(kinds)

    def summary(self) -> dict:
        on = np.array(self.on, bool)
        lam = np.array([[np.nan if v is None else v for v in row] for row in self.lam], float)
        near = np.array([[np.nan if v is None else v for v in row] for row in self.near], float)
        f = np.array(self.fractions[1:-1])
        err = np.abs(lam - f[None, :])
        true = on & (err <= TRUE_INBETWEEN)
        fitted = ~np.isnan(lam)
        return {
            "on_manifold": float(on.mean()),
            "true_inbetween": float(true.mean()),
            "lambda_error": float(np.nanmean(err)) if fitted.any() else None,
            "lambda_in_0_1": float(((lam >= 0) & (lam <= 1))[fitted].mean()) if fitted.any() else None,
            "nearest_keyframe_px_median": float(np.nanmedian(near)) if fitted.any() else None,
            "ppl_params": _mean_std(self.ppl), "pdv_params": _mean_std(self.pdv),
            "ppl_latent": _mean_std(self.ppl_latent), "pdv_latent": _mean_std(self.pdv_latent),
            "monotone_steps": float(np.mean(self.monotone)) if self.monotone else None,
            "sequences_fully_fitted": len(self.ppl),
            "endpoint_max_error": self.endpoint_error,
            "seconds_per_frame": self.seconds / max(self.frames_made, 1),
            "unet_evaluations_per_frame": self.unet_evaluations / max(self.frames_made, 1),
            "per_position": {f"{fr:.3f}": {"on_manifold": float(on[:, i].mean()), "true_inbetween": float(true[:, i].mean())}
                             for i, fr in enumerate(f)},
            "failures": failures.breakdown(self.kinds, list(f)),
            "pop": edges.summarise(self.look_inbetweens, self.look_keyframes, self.end_steps),
        }


def _mean_std(values: Sequence[float]) -> Optional[list[float]]:
    return [float(np.mean(values)), float(np.std(values))] if values else None


def run_scheme(name: str, pairs, files, config: EvalConfig, manager, out: Path,
               noise: Optional[tuple[float, float]] = None, progress=None,
               sampler: Optional[tuple[str, int]] = None) -> SchemeResult:
    """Every pair through run_morph with one scheme; frames kept under out/runs/<name>/<pair>/."""
    import torch

    from latentween.images import read_image
    from latentween.morph import run_morph
    from latentween.settings import MorphSettings, RuntimeSettings

    lo, hi = noise or (config.min_noise, config.max_noise)
    scheme = "ours" if name == "ours-aligned" else name
    scheduler, steps = sampler or (config.scheduler, config.steps)
    settings = MorphSettings(model=config.model, frames=config.frames, seed=config.seed, steps=steps,
                             scheduler=scheduler, guidance=config.guidance, min_noise=lo, max_noise=hi, scheme=scheme,
                             candidates=1, align="features" if name == "ours-aligned" else "none")
    fractions = settings.frame_fractions()
    result = SchemeResult(name, fractions)
    scene_world = worlds.WORLDS[config.world]
    pipe_vae = manager.get(config.model).vae
    for k, (pair, (fa, fb)) in enumerate(zip(pairs, files)):
        folder = out / "runs" / name / f"{k:03d}"
        started = time.perf_counter()
        manifest = run_morph([read_image(fa), read_image(fb)], folder, settings, RuntimeSettings(max_batch=16, dtype=config.dtype), manager)
        result.seconds += time.perf_counter() - started
        result.frames_made += len(fractions) - 2
        result.unet_evaluations += manifest["unet"]["evaluations"]
        images = [_read_rgb(folder / e["file"]) for e in manifest["frames"]]
        result.endpoint_error = max(result.endpoint_error, float(np.abs(images[0].astype(int) - _read_rgb(fa).astype(int)).max()),
                                    float(np.abs(images[-1].astype(int) - _read_rgb(fb).astype(int)).max()))
        scene_world.score(result, images, fractions, pair)
        latents = _vae_latents(pipe_vae, images, torch)
        steps = np.linalg.norm(np.diff(latents.reshape(len(images), -1), axis=0), axis=1)
        result.ppl_latent.append(float(steps.sum()))
        result.pdv_latent.append(float(steps.std()))
        if progress is not None:
            progress(name, k + 1, len(pairs))
    return result


def _read_rgb(path) -> np.ndarray:
    import cv2

    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _vae_latents(vae, images, torch) -> np.ndarray:
    x = torch.from_numpy(np.stack(images)).float().permute(0, 3, 1, 2).div(127.5).sub(1).to(vae.device, vae.dtype)
    with torch.inference_mode():
        return vae.encode(x).latent_dist.mean.float().cpu().numpy()


def evaluate(config: EvalConfig, out: str | Path, manager=None, progress=None) -> dict:
    """Run every scheme (and the noise sweep) and write report.json, report.md, grid.png and worst.png to `out`."""
    from latentween.models import ModelManager

    from latentween.settings import RuntimeSettings

    out = Path(out)
    scene_world = worlds.WORLDS[config.world]
    config = replace(config, model=config.model or scene_world.model, distance=config.distance or scene_world.distance)
    manager = manager or ModelManager(RuntimeSettings(dtype=config.dtype))
    pairs = scene_world.make_pairs(config.pairs, config.seed, config.distance)
    files = write_keyframes(out / "keyframes", pairs, scene_world)
    started = time.perf_counter()
    results = {name: run_scheme(name, pairs, files, config, manager, out, progress=progress) for name in config.schemes}
    sweep = {}
    for lo, hi in config.noise_sweep:
        for name in ("ours", "ours-aligned"):
            key = f"{name}@{lo:.2f}-{hi:.2f}"
            sweep[key] = run_scheme(name, pairs, files, config, manager, out / "sweep" / f"{lo:.2f}-{hi:.2f}",
                                    noise=(lo, hi), progress=progress).summary()
    samplers = {}
    for scheduler, steps in config.samplers:
        samplers[f"{scheduler}:{steps}"] = run_scheme(
            "ours-aligned", pairs, files, config, manager, out / "samplers" / f"{scheduler}-{steps}",
            progress=progress, sampler=(scheduler, steps)).summary()
    worst_scheme = "ours-aligned" if "ours-aligned" in results else next(iter(results))
    worst = breakdown_report.write_worst(out / "worst.png", out, worst_scheme, results[worst_scheme].kinds,
                                         min(config.worst_pairs, config.pairs), config.frames)
    report = {"config": {**asdict(config), "schemes": list(config.schemes)},
              "schemes": {name: r.summary() for name, r in results.items()}, "noise_sweep": sweep,
              "samplers": samplers, "worst": {"scheme": worst_scheme, "pairs": worst},
              "seconds_total": time.perf_counter() - started}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(render_markdown(report))
    if samplers:
        plot_samplers(out / "samplers.png", samplers)
    write_grid(out / "grid.png", out, list(config.schemes), min(config.grid_pairs, config.pairs), config.frames)
    return report


def write_keyframes(folder: Path, pairs, scene_world=worlds.WORLDS["disks"]) -> list[tuple[Path, Path]]:
    """Each pair's two keyframes rendered to folder/NNN_a.png and NNN_b.png."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for k, (a, b) in enumerate(pairs):
        fa, fb = folder / f"{k:03d}_a.png", folder / f"{k:03d}_b.png"
        _write_rgb(fa, scene_world.render(a))
        _write_rgb(fb, scene_world.render(b))
        files.append((fa, fb))
    return files


def _write_rgb(path: Path, rgb: np.ndarray) -> None:
    import cv2

    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _fmt(v, digits=2) -> str:
    if v is None:
        return "-"
    if isinstance(v, list):
        return f"{v[0]:.{digits}f} ± {v[1]:.{digits}f}"
    return f"{v:.{digits}f}"


def render_markdown(report: dict) -> str:
    c = report["config"]
    scene_world = worlds.WORLDS[c.get("world", "disks")]
    lines = [f"# Toy-world evaluation: {scene_world.name}", "",
             f"{c['pairs']} seeded pairs (seed {c['seed']}, {scene_world.describe(c['distance'])}), "
             f"{c['frames']} frames, {c.get('scheduler', 'ddim')} {c['steps']} steps, guidance {c['guidance']}, noise {c['min_noise']}-{c['max_noise']}, "
             f"model `{c['model']}`. True in-between: on-manifold and |lambda - f| <= {TRUE_INBETWEEN}. "
             f"PPL/PDV: sum/std of adjacent-frame distances (docs/method.md, definition (b)) in {scene_world.units} and in "
             f"the model's VAE latent space (L2).", "",
             "Schemes: `ours` is the paper's method with alignment off (`--align none`); `ours-aligned` is what "
             "`latentween morph` does by default (`--align auto`, which aligns the keyframes by diffusion features when "
             "no points or people are given); "
             "`interpolate-only`, `interpolate-denoise`, `did` and `did-no-shared-noise` are the paper's baselines "
             "(`--scheme`, docs/method.md). Every scheme runs with one candidate.", "",
             "| scheme | on-manifold | true in-between | mean abs(lambda-f) | lambda in [0,1] | nearest keyframe px (median) "
             "| PPL params | PDV params | PPL latent | PDV latent | monotone steps | endpoint max err | UNet evals/frame | s/frame |",
             "|---" * 14 + "|"]
    for name, s in report["schemes"].items():
        lines.append(f"| {name} | {_fmt(s['on_manifold'])} | {_fmt(s['true_inbetween'])} | {_fmt(s['lambda_error'])} | "
                     f"{_fmt(s['lambda_in_0_1'])} | {_fmt(s['nearest_keyframe_px_median'], 1)} | {_fmt(s['ppl_params'], 1)} | "
                     f"{_fmt(s['pdv_params'], 1)} | {_fmt(s['ppl_latent'], 1)} | {_fmt(s['pdv_latent'], 1)} | "
                     f"{_fmt(s['monotone_steps'])} | {s['endpoint_max_error']:.0f} | {s['unet_evaluations_per_frame']:.1f} | "
                     f"{s['seconds_per_frame']:.3f} |")
    positions = list(next(iter(report["schemes"].values()))["per_position"])
    lines += ["", "## Per frame position: on-manifold / true in-between", "",
              "| scheme | " + " | ".join(positions) + " |", "|---" * (len(positions) + 1) + "|"]
    for name, s in report["schemes"].items():
        lines.append(f"| {name} | " + " | ".join(
            f"{s['per_position'][p]['on_manifold']:.2f} / {s['per_position'][p]['true_inbetween']:.2f}" for p in positions) + " |")
    if report["noise_sweep"]:
        lines += ["", "## Noise sweep (min-max fraction of the schedule): on-manifold / true in-between", "",
                  "| run | all | " + " | ".join(positions) + " | mean abs(lambda-f) | nearest keyframe px |",
                  "|---" * (len(positions) + 4) + "|"]
        for name, s in report["noise_sweep"].items():
            cells = " | ".join(f"{s['per_position'][p]['on_manifold']:.2f} / {s['per_position'][p]['true_inbetween']:.2f}"
                               for p in positions)
            lines.append(f"| {name} | {_fmt(s['on_manifold'])} / {_fmt(s['true_inbetween'])} | {cells} | "
                         f"{_fmt(s['lambda_error'])} | {_fmt(s['nearest_keyframe_px_median'], 1)} |")
    if report.get("samplers"):
        lines += ["", "## Samplers (ours-aligned): quality against UNet evaluations per frame", "",
                  "| sampler:steps | UNet evals/frame | on-manifold | true in-between | worst position (true in-between) | "
                  + " | ".join(positions) + " |", "|---" * (len(positions) + 5) + "|"]
        for name, s in report["samplers"].items():
            worst = min(s["per_position"][p]["true_inbetween"] for p in positions)
            cells = " | ".join(f"{s['per_position'][p]['on_manifold']:.2f} / {s['per_position'][p]['true_inbetween']:.2f}"
                               for p in positions)
            lines.append(f"| {name} | {s['unet_evaluations_per_frame']:.1f} | {_fmt(s['on_manifold'])} | "
                         f"{_fmt(s['true_inbetween'])} | {worst:.2f} | {cells} |")
    lines += breakdown_report.render_markdown(report)
    if report.get("worst"):
        lines += ["", f"worst.png: the {len(report['worst']['pairs'])} pairs of `{report['worst']['scheme']}` with the fewest "
                      f"true in-betweens (pairs {', '.join(map(str, report['worst']['pairs']))})."]
    lines += ["", f"Total {report['seconds_total']:.0f} s.", ""]
    return "\n".join(lines)


def plot_samplers(path: Path, samplers: dict) -> None:
    """True in-between rate (all positions, and the worst one) against UNet evaluations per frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for name, s in samplers.items():
        worst = min(v["true_inbetween"] for v in s["per_position"].values())
        x = s["unet_evaluations_per_frame"]
        ax.scatter([x], [s["true_inbetween"]], color="tab:blue")
        ax.scatter([x], [worst], color="tab:red", marker="v")
        ax.annotate(name, (x, s["true_inbetween"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel("UNet evaluations per in-between frame")
    ax.set_ylabel("true in-between rate")
    ax.set_title("toy world: quality against cost (blue: all frames, red: worst position)", fontsize=9)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_grid(path: Path, out: Path, schemes: list[str], pairs: int, frames: int) -> None:
    """One block per pair, one row per scheme (labelled with scheme and pair), the frames left to right
    under a header giving each column's fraction."""
    import cv2

    label_w, size, gap, header_h = 150, 64, 6, 16
    text = dict(fontFace=cv2.FONT_HERSHEY_SIMPLEX, fontScale=0.4, color=(0, 0, 0), thickness=1, lineType=cv2.LINE_AA)
    header = np.full((header_h, label_w + frames * size, 3), 255, np.uint8)
    cv2.putText(header, "fraction", (4, 12), **text)
    for i in range(frames):
        cv2.putText(header, f"{i / (frames - 1):.3g}", (label_w + i * size + 4, 12), **text)
    rows = [header]
    for k in range(pairs):
        for name in schemes:
            folder = out / "runs" / name / f"{k:03d}"
            tiles = [_read_rgb(folder / f"frame_{i:05d}.png") for i in range(frames)]
            label = np.full((size, label_w, 3), 255, np.uint8)
            cv2.putText(label, name, (4, size // 2 - 2), **text)
            cv2.putText(label, f"pair {k}", (4, size // 2 + 12), **text)
            rows.append(np.concatenate([label] + tiles, axis=1))
        rows.append(np.full((gap, rows[-1].shape[1], 3), 255, np.uint8))
    _write_rgb(path, np.concatenate(rows, axis=0))
