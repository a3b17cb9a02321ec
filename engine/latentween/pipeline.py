"""The interpolation pipeline: METHOD.md sections 1 and 2 on diffusers components.

Reads like the paper: encode both keyframes, plan the recursive bisection, and for every level add
shared noise to each new frame's parents, slerp, and denoise with DDIM and classifier-free guidance,
all frames of the level (and their candidates) together. Parents are always finished frames.
Images in and out are float32 arrays (H, W, 3) in [0, 1] at the work size; file handling is elsewhere.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch

from latentween.consistency import FrameRanker, frame_expectations, uses_consistency
from latentween.errors import Cancelled
from latentween.families import FAMILIES, Prompt, slerp_prompts
from latentween.guidance import GuidedDenoiser, UNetCounter
from latentween.method import denoise, frame_generator, randn
from latentween.plan import PlannedFrame, PlannedRow, ddim_index, level_chunks, make_plan
from latentween.progress import Progress
from latentween.request import FrameResult, InterpolationRequest
from latentween.schemes import STARTS, Start, blend
from latentween.schedulers import clean_estimate, make_scheduler, noise_coefficients, start_at, timestep_options


@dataclass
class Schedule:
    """What generate() runs: the plan's levels, each level's fixed chunks, and per level the numbers of
    the chunks that hold an unfinished frame; `total` counts their denoising steps (progress)."""

    plan: list[list[PlannedFrame]]
    chunks: list[list[list[PlannedRow]]]
    todo: list[list[int]]
    total: int


# Samplers that draw fresh noise at every step: each row gets its own generator (method.denoise).
_STOCHASTIC = {"LCMScheduler", "TCDScheduler"}

Chooser = Callable[[PlannedFrame, list[np.ndarray]], tuple[int, list[float]]]
ProgressCallback = Callable[[dict], None]


def first_candidate(frame: PlannedFrame, images: list[np.ndarray]) -> tuple[int, list[float]]:
    return 0, []


class InterpolationPipeline:
    """Components in, frames out. `max_batch` bounds the rows of every UNet and VAE call. `family`
    (latentween.families) encodes prompts and says what the UNet is conditioned with."""

    def __init__(self, unet, vae, family, scheduler, *, controlnet=None, preview_vae=None, max_batch: int = 8):
        self.unet, self.vae, self.family = unet, vae, family
        self.scheduler, self.controlnet, self.preview_vae = scheduler, controlnet, preview_vae
        self.max_batch = max_batch
        self.timestep_options: dict = {}  # set_timesteps' extra arguments for the request's size (_start)
        self.counter = UNetCounter()
        self.device = unet.device
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)

    @classmethod
    def from_components(cls, components, *, scheduler: str = "auto", controlnet=None, preview_vae=None,
                        max_batch: int = 8) -> "InterpolationPipeline":
        """`scheduler`: a name of latentween.schedulers.SCHEDULERS, set up over the model's noise schedule."""
        scheduler = make_scheduler(scheduler, components.scheduler_config)
        return cls(components.unet, components.vae, FAMILIES[components.family](components), scheduler,
                   controlnet=controlnet, preview_vae=preview_vae, max_batch=max_batch)

    # -- the pieces ---------------------------------------------------------------------------

    def check_inputs(self, images: Sequence[np.ndarray], request: InterpolationRequest) -> None:
        if len(images) != 2:
            raise ValueError(f"`images` must hold 2 keyframes, got {len(images)}")
        if images[0].shape != images[1].shape or images[0].ndim != 3 or images[0].shape[2] != 3:
            raise ValueError(f"keyframes must be equal-size (H, W, 3) arrays, got {images[0].shape} and {images[1].shape}")
        h, w = images[0].shape[:2]
        multiple = self.vae_scale_factor * self.family.patch
        if h % multiple or w % multiple:
            raise ValueError(f"keyframe size {w}x{h} is not a multiple of {multiple}")
        if request.true_cfg != 1.0 and not self.family.flow:
            raise ValueError(f"true_cfg is for flow models (Flux); {self.family.name} models use guidance")
        f = list(request.fractions)
        if len(f) < 2 or f[0] != 0.0 or f[-1] != 1.0 or any(b <= a for a, b in zip(f, f[1:])):
            raise ValueError(f"`fractions` must rise strictly from 0 to 1, got {f}")
        if request.scheme not in STARTS:
            raise ValueError(f"unknown scheme {request.scheme!r}: one of {', '.join(STARTS)}")

    # The VAE sees one image per call: a frame's pixels then never depend on which other frames are
    # decoded with it, and the peak memory of a decode stays one image's.

    @torch.inference_mode()
    def encode_images(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """E: image -> z0, the posterior mean (deterministic), scaled like the model's training latents."""
        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).to(self.device, self.vae.dtype) * 2 - 1
        latents = torch.cat([self.vae.encode(x[i:i + 1]).latent_dist.mean for i in range(x.shape[0])])
        return self._scale(latents.float())

    @torch.inference_mode()
    def decode_latents(self, latents: torch.Tensor) -> list[np.ndarray]:
        """D: latent -> image, float32 (H, W, 3) in [0, 1]."""
        config = self.vae.config
        z = latents / config.scaling_factor + (getattr(config, "shift_factor", None) or 0.0)
        images = []
        for i in range(z.shape[0]):
            x = self.vae.decode(z[i:i + 1].to(self.vae.dtype), return_dict=False)[0]
            images.append(((x[0].float() + 1) / 2).clamp(0, 1).permute(1, 2, 0).cpu().numpy())
        return images

    def _scale(self, latents: torch.Tensor) -> torch.Tensor:
        config = self.vae.config
        return (latents - (getattr(config, "shift_factor", None) or 0.0)) * config.scaling_factor

    def encode_text(self, texts: Sequence[str]) -> Prompt:
        """The prompts' text conditioning, one row each, as the model's family encodes it."""
        return self.family.encode(texts)

    def encode_pair(self, prompt: str, negative: str) -> tuple[Prompt, Prompt]:
        """(prompt, negative) as the family conditions on them (SDXL may zero an empty negative)."""
        return self.family.encode_pair(prompt, negative)

    def noise_level(self, k: int, steps: int) -> tuple[int, float, float]:
        """Set the scheduler up to start at DDIM index k (0 = cleanest): its begin position and the
        (alpha_t, sigma_t) of its own noising there (latentween.schedulers)."""
        begin = start_at(self.scheduler, steps, k, self.device, **self.timestep_options)
        return (begin, *noise_coefficients(self.scheduler, begin))

    # -- the method ---------------------------------------------------------------------------

    def generate(self, images: Sequence[np.ndarray], request: InterpolationRequest, *,
                 done: Optional[dict[int, torch.Tensor]] = None, chooser: Chooser = first_candidate,
                 callback: Optional[ProgressCallback] = None,
                 should_cancel: Optional[Callable[[], bool]] = None) -> Iterator[FrameResult]:
        """Yield every new frame as soon as it is final, level by level (METHOD.md 2).

        `done` maps frame indices to latents finished by an earlier run: they are not made again. A
        chunk (plan.level_chunks) holding any unfinished frame is re-run whole, exactly as the first
        run made it, so the remaining frames come out as if the job had never been interrupted.
        """
        # 1. Check inputs; 2. encode keyframes and prompts
        latents, text = self._start(images, request, done or {})
        done = dict(done or {})

        # 3. Plan the recursion, its noise levels and the fixed chunks of rows that run together
        schedule = self.schedule(request, done)
        progress = Progress(done=0, total=schedule.total, stage="denoising", levels=len(schedule.plan))
        trajectories: dict[int, dict[int, torch.Tensor]] = {}  # DID only: frame -> {ddim index: latent}
        denoiser = self.denoiser(request)

        # 4. Each chunk (whole frames): add noise, interpolate, denoise, decode, choose
        for level_number, numbers in enumerate(schedule.todo, start=1):
            progress.level = level_number
            for number in numbers:
                yield from self._run_chunk(schedule.chunks[level_number - 1][number], (level_number, number), latents,
                                           trajectories, list(request.fractions), text, schedule.plan, done, denoiser,
                                           chooser, request, progress, callback, should_cancel)

    def run_chunk(self, images: Sequence[np.ndarray], request: InterpolationRequest, level: int, number: int,
                  known: dict[int, torch.Tensor], *, chooser: Chooser = first_candidate,
                  callback: Optional[ProgressCallback] = None,
                  should_cancel: Optional[Callable[[], bool]] = None) -> list[FrameResult]:
        """Chunk `number` of plan level `level` (1 = the first), alone: the frames generate() makes of it,
        byte for byte, given the same environment (docs/determinism.md). `known` maps finished frames to
        their latents; it must hold the chunk's parents, and chunk frames in it are not returned (as
        generate's `done`). Lets a caller run a level's chunks in separate processes (latentween.farm)."""
        if request.scheme.startswith("did"):
            raise ValueError("DID's parents are partially denoised trajectories, which run_chunk is not given")
        # 1. Check inputs; 2. encode keyframes and prompts (deterministic, so every chunk's equal generate's)
        latents, text = self._start(images, request, known)
        # 3. The same plan and fixed chunks as generate()
        schedule = self.schedule(request, known)
        chunk = schedule.chunks[level - 1][number]
        missing = sorted({i for row in chunk for i in (row.frame.left, row.frame.right)} - set(latents))
        if missing:
            raise ValueError(f"chunk {level}/{number} needs the latents of frames {missing}")
        progress = Progress(done=0, total=(chunk[0].start + 1) * len(chunk), stage="denoising", levels=len(schedule.plan),
                            level=level)
        denoiser = self.denoiser(request)
        # 4. The chunk, through the code generate() runs it with
        return list(self._run_chunk(chunk, (level, number), latents, {}, list(request.fractions), text, schedule.plan,
                                    dict(known), denoiser, chooser, request, progress, callback, should_cancel))

    def __call__(self, images: Sequence[np.ndarray], request: InterpolationRequest, **kwargs) -> list[FrameResult]:
        """All new frames, in frame order."""
        return sorted(self.generate(images, request, **kwargs), key=lambda r: r.index)

    # -- helpers of `generate` --------------------------------------------------------------------

    def _start(self, images, request: InterpolationRequest, done: dict) -> tuple[dict, tuple]:
        """Inputs checked, the sampler's timesteps set, the keyframes' and `done` frames' latents by frame
        index, and the text conditioning (cond of each keyframe, negative)."""
        self.check_inputs(images, request)
        keys = self.encode_images(images)
        self.timestep_options = timestep_options(self.scheduler, request.steps, tuple(keys.shape[-2:]))
        self.scheduler.set_timesteps(request.steps, device=self.device, **self.timestep_options)
        latents: dict[int, torch.Tensor] = {0: keys[0], len(request.fractions) - 1: keys[1]}
        latents.update({i: z.to(self.device, torch.float32) for i, z in done.items()})
        if request.text is not None:
            return latents, tuple(p.to(self.device, torch.float32) for p in request.text)
        cond, negative = self.encode_pair(request.prompt, request.negative)
        return latents, (cond, cond, negative)

    def denoiser(self, request: InterpolationRequest) -> GuidedDenoiser:
        scale, condition = self.family.guidance(request.guidance, request.true_cfg)
        return GuidedDenoiser(self.unet, scale, self.max_batch, self.counter, self.controlnet, condition=condition)

    def schedule(self, request: InterpolationRequest, done=()) -> Schedule:
        """The plan, its fixed chunks and which of them still have frames to make. Needs no model."""
        plan = make_plan(list(request.fractions), request.min_noise, request.max_noise, request.noise_curve)
        chunks = [self.chunks(level, request) for level in plan]
        todo = [[n for n, c in enumerate(level) if any(row.frame.index not in done for row in c)] for level in chunks]
        total = 0 if request.scheme == "interpolate-only" else sum(
            (chunks[lv][n][0].start + 1) * len(chunks[lv][n]) for lv, numbers in enumerate(todo) for n in numbers)
        return Schedule(plan, chunks, todo, total)

    def rows_per_candidate(self, request: InterpolationRequest) -> int:
        """UNet rows one candidate needs per step: both guidance halves unless g is 0 or 1."""
        return 1 if self.family.guidance(request.guidance, request.true_cfg)[0] in (0.0, 1.0) else 2

    def chunks(self, level: list[PlannedFrame], request: InterpolationRequest) -> list[list[PlannedRow]]:
        """The level's frames in fixed chunks of whole frames that fit one UNet call of `max_batch` rows."""
        size = max(1, self.max_batch // self.rows_per_candidate(request))
        counts = [request.candidates(f.level) for f in level]
        return level_chunks(level, counts, [ddim_index(f.noise, request.steps) for f in level], size)

    def _run_chunk(self, chunk, where, latents, trajectories, fractions, text, plan, done, denoiser, chooser,
                   request, progress, callback, should_cancel) -> Iterator[FrameResult]:
        """One chunk through METHOD.md 1; yields its unfinished frames, each with its chosen candidate."""
        started, calls = time.perf_counter(), self.counter.calls
        evaluations = {row.frame.index: 0 for row in chunk}
        begin, alpha, sigma = self.noise_level(chunk[0].start, request.steps)
        z_t = self.prepare_latents(chunk, latents, trajectories, fractions, request, (alpha, sigma))
        early: dict[int, dict] = {}
        # Consistency ranking compares candidates with the parents' slerp; other choosers need nothing more.
        expected = frame_expectations([r.frame for r in chunk], Start(latents, trajectories, fractions, request,
                                      (alpha, sigma)), blend) if uses_consistency(chooser) else None
        ranker = FrameRanker(chooser, expected)
        if request.scheme == "interpolate-only":
            rows, z0, captured = list(range(len(chunk))), z_t, {}
        else:
            conditioning = self.frame_conditioning(chunk, fractions, text, request)
            rows, z0, captured = self._denoise(chunk, z_t, begin, denoiser, conditioning, plan, request, progress,
                                               callback, should_cancel, evaluations, ranker, early)
        frames = [f for f in dict.fromkeys(row.frame for row in chunk) if f.index not in done]
        wanted = [i for i, r in enumerate(rows) if chunk[r].frame.index not in done]
        decoded = dict(zip(wanted, self.decode_latents(z0[wanted]))) if wanted else {}
        seconds = (time.perf_counter() - started) / max(1, len(frames))
        halves = self.rows_per_candidate(request)
        for frame in frames:
            mine = [i for i in wanted if chunk[rows[i]].frame is frame]
            chosen, scores, parts = ranker(frame, [decoded[i] for i in mine], z0[mine]) if len(mine) > 1 \
                else (0, [], None)
            i = mine[chosen]
            latents[frame.index] = z0[i]
            trajectories[frame.index] = {k: z[i] for k, z in captured.items()}
            info = self._frame_info(frame, request, chunk, rows[i], scores, early.get(frame.index), seconds, where,
                                    parts)
            info["unet"] = {"evaluations": evaluations[frame.index] * halves, "calls": self.counter.calls - calls}
            yield FrameResult(frame.index, fractions[frame.index], decoded[i], z0[i].cpu(), info)

    def prepare_latents(self, rows: list[PlannedRow], latents: dict, trajectories: dict,
                        fractions: list[float], request: InterpolationRequest,
                        noise: tuple[float, float]) -> torch.Tensor:
        """z_t of every row under the request's scheme (latentween.schemes); `noise` = (alpha_t, sigma_t)
        of the rows' common start (noise_level)."""
        start, context = STARTS[request.scheme], Start(latents, trajectories, fractions, request, noise)
        starts = []
        for row in rows:
            index = row.frame.index
            eps = randn(latents[0].shape, frame_generator(request.seed, fractions[index], row.candidate,
                                                         take=request.takes.get(index, 0))).to(self.device)
            starts.append(start(context, row, eps)[0])
        return torch.stack(starts)

    def frame_conditioning(self, rows: list[PlannedRow], fractions: list[float], text, request) -> dict:
        """Per row: slerp of the keyframes' prompt embeddings at the frame's fraction with the
        negative fixed (METHOD.md 3), and the interpolated pose with its scale (METHOD.md 4)."""
        f = torch.tensor([fractions[r.frame.index] for r in rows], dtype=torch.float64)
        n = len(rows)
        out = {"cond": slerp_prompts(text[0].repeat(n), text[1].repeat(n), f), "uncond": text[2].repeat(n)}
        if request.control is not None and self.controlnet is not None:
            per_frame = {r.frame.index: request.control(fractions[r.frame.index]) for r in rows}
            images = [per_frame[r.frame.index][0] for r in rows]
            out["control"] = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).to(self.device)
            out["control_scale"] = torch.tensor([per_frame[r.frame.index][1] for r in rows],
                                                dtype=torch.float32, device=self.device)
        return out

    def _denoise(self, chunk, z_t, begin, denoiser, conditioning, plan, request, progress, callback, should_cancel,
                 evaluations, ranker, early):
        """Denoise a chunk from `begin` to 0. With `prune_at`, each frame's candidates are ranked after that
        share of the steps on a cheap preview of their predicted clean latents (consistency ranking: on
        those latents), and only the best `keep` finish (`ranker`: consistency.FrameRanker). Returns the
        chunk rows that finished, their clean latents and (DID) captured latents, in those rows' order."""
        capture = None
        if request.scheme.startswith("did"):
            capture = {ddim_index(f.noise, request.steps) for level in plan for f in level}
        generators = None
        if request.eta > 0 or self.scheduler.__class__.__name__ in _STOCHASTIC:
            generators = [frame_generator(request.seed, request.fractions[r.frame.index], r.candidate, "eta",
                                          request.takes.get(r.frame.index, 0)) for r in chunk]
        alive = list(range(len(chunk)))
        last: dict = {}

        def model(z, t):
            for r in alive:
                evaluations[chunk[r].frame.index] += 1
            picked = torch.tensor(alive, device=self.device)
            out = denoiser(z, t, **{name: v[picked] for name, v in conditioning.items()})
            last.update(x=z, out=out, t=t)
            return out

        def step(info):
            if should_cancel is not None and should_cancel():
                raise Cancelled()
            progress.done += info["samples"]
            if callback is not None:
                callback(progress.event())

        length = len(self.scheduler.timesteps)
        cut = begin + max(1, round(request.prune_at * (length - begin))) if request.prune_at else length
        if cut >= length or not self._prunable(chunk, request):
            z0, captured = denoise(model, z_t, self.scheduler, begin, eta=request.eta, generators=generators,
                                   capture=capture, callback=step)
            return alive, z0, captured
        # 1. every candidate up to the cut
        z, captured = denoise(model, z_t, self.scheduler, begin, end=cut, eta=request.eta, generators=generators,
                              capture=capture, callback=step)
        # 2. rank each frame's candidates on a preview of the last step's predicted clean latent
        estimate = clean_estimate(self.scheduler, last["x"], last["out"], last["t"])
        previews = self.preview_latents(estimate)
        keep = []
        for frame in dict.fromkeys(row.frame for row in chunk):
            mine = [r for r in alive if chunk[r].frame is frame]
            _, ranked, parts = ranker(frame, [previews[r] for r in mine], estimate[mine])
            ranked = ranked or [0.0] * len(mine)  # no scores: keep the first
            best = sorted(sorted(range(len(mine)), key=lambda i: -ranked[i])[:request.keep])
            early[frame.index] = {"after_steps": cut - begin, "scores": ranked,
                                  **({"score_parts": parts} if parts is not None else {}),
                                  "kept": [chunk[mine[i]].candidate for i in best]}
            keep += [mine[i] for i in best]
        alive[:] = keep
        progress.total -= (len(chunk) - len(keep)) * (length - cut)
        # 3. the kept candidates finish; the sampler restarts at the cut with them alone
        restart = start_at(self.scheduler, request.steps, length - 1 - cut, self.device, **self.timestep_options)
        kept_generators = [generators[r] for r in keep] if generators is not None else None
        z0, more = denoise(model, z[keep], self.scheduler, restart, eta=request.eta, generators=kept_generators,
                           capture=capture, callback=step)
        return keep, z0, {**{k: v[keep] for k, v in captured.items()}, **more}

    def _prunable(self, chunk, request) -> bool:
        """Pruning needs an automatic ranking (not a person choosing) and more candidates than are kept."""
        counts: dict[int, int] = {}
        for row in chunk:
            counts[row.frame.index] = counts.get(row.frame.index, 0) + 1
        return request.rank_early and max(counts.values()) > request.keep

    @torch.inference_mode()
    def preview_latents(self, latents: torch.Tensor) -> list[np.ndarray]:
        """Cheap images of latents for early ranking: the preview VAE (e.g. diffusers' AutoencoderTiny)
        when one is set, else the model's VAE on the latents at half their size (a quarter of the work)."""
        if self.preview_vae is not None:
            x = self.preview_vae.decode(latents.to(self.device, self.preview_vae.dtype), return_dict=False)[0]
            return [((im.float() + 1) / 2).clamp(0, 1).permute(1, 2, 0).cpu().numpy() for im in x]
        half = torch.nn.functional.avg_pool2d(latents, 2) if min(latents.shape[-2:]) >= 8 else latents
        return self.decode_latents(half)

    def _frame_info(self, frame: PlannedFrame, request, chunk, row: int, scores, early, seconds, where,
                    parts=None) -> dict:
        start = ddim_index(frame.noise, request.steps)
        timestep = int(self.scheduler.timesteps.flip(0)[start])
        info = {
            "level": frame.level, "parents": [frame.left, frame.right],
            "local_fraction": frame.local_fraction, "noise": frame.noise,
            "ddim_index": start, "timestep": timestep if request.scheme != "interpolate-only" else None,
            "candidates": sum(1 for r in chunk if r.frame is frame), "chosen": chunk[row].candidate,
            "scores": scores, **({"score_parts": parts} if parts is not None else {}),
            "seconds": seconds, "chunk": list(where),
        }
        if early is not None:
            info["early_ranking"] = early
        return info
