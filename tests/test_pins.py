"""Numbers pinned where a swap would pass every other test (diffusers style): which guidance half is
the base, that a ControlNet conditions both halves, the CLIP score's sign, the direction of the noise
index, a fixed-seed slice of one level's latents; and the engine core's independence from the
daemon, the CLI and HTTP."""
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from latentween.families import Prompt
from latentween.guidance import GuidedDenoiser


class ContextUNet(torch.nn.Module):
    """Predicts, for every pixel, the first number of its row's context, plus any ControlNet residual."""

    dtype, device = torch.float32, torch.device("cpu")

    def forward(self, sample, t, encoder_hidden_states, return_dict=False, down_block_additional_residuals=None,
                mid_block_additional_residual=None):
        out = encoder_hidden_states[:, 0, 0].view(-1, 1, 1, 1).expand_as(sample).clone()
        if mid_block_additional_residual is not None:
            out = out + mid_block_additional_residual
        return (out,)


class ImageControlNet(torch.nn.Module):
    """Residuals equal to the mean of each row's control image."""

    def forward(self, sample, t, encoder_hidden_states, controlnet_cond, conditioning_scale, return_dict=False):
        mean = controlnet_cond.mean(dim=(1, 2, 3)).view(-1, 1, 1, 1).expand_as(sample)
        return [mean], mean


def rows(value: float, n: int = 2) -> Prompt:
    return Prompt(torch.full((n, 4, 8), value))


def test_guidance_starts_from_the_unconditional_half_and_scales_the_difference():
    denoiser = GuidedDenoiser(ContextUNet(), guidance=7.5, max_batch=3)
    out = denoiser(torch.zeros(2, 4, 2, 2), torch.tensor(10), cond=rows(3.0), uncond=rows(1.0))
    # eps_u + g (eps_c - eps_u) = 1 + 7.5 * 2; with the halves swapped it would be 3 - 15
    assert torch.equal(out, torch.full((2, 4, 2, 2), 16.0))


def test_the_controlnet_conditions_both_halves_with_the_same_image_and_its_own_scale():
    denoiser = GuidedDenoiser(ContextUNet(), guidance=7.5, max_batch=8, controlnet=ImageControlNet())
    control = torch.stack([torch.full((3, 8, 8), 0.5), torch.full((3, 8, 8), 1.0)])
    scale = torch.tensor([1.0, 0.5])
    out = denoiser(torch.zeros(2, 4, 2, 2), torch.tensor(10), cond=rows(3.0), uncond=rows(1.0), control=control,
                   control_scale=scale)
    # both halves shift by the same residual r = mean * scale, so guidance leaves it r: 16 + r (one half only: 16 + 7.5 r)
    assert out[0].unique().tolist() == [16.5] and out[1].unique().tolist() == [16.5]
    assert denoiser.counter.controlnet_calls == 1 and denoiser.counter.rows == 4


def test_the_clip_score_is_positive_for_an_image_like_the_positive_prompt():
    from latentween.ranking import ClipRanker, clip_chooser

    positive, negative = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    model = SimpleNamespace(encode_text=lambda tokens: torch.stack([positive, negative]),
                            encode_image=lambda batch: batch.mean(dim=(2, 3))[:, :2])
    ranker = ClipRanker(model, lambda image: torch.from_numpy(np.asarray(image, np.float32)).permute(2, 0, 1),
                        lambda texts: torch.zeros(len(texts), 1), "cpu")
    like_positive, like_negative = np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 3), np.float32)
    like_positive[..., 0], like_negative[..., 1] = 1.0, 1.0
    scores = ranker.scores([like_negative, like_positive], "good", "bad")
    assert scores == pytest.approx([-1.0, 1.0])
    assert clip_chooser(ranker, "good", "bad")(None, [like_negative, like_positive])[0] == 1


def test_a_higher_noise_index_means_more_noise(pipe):
    pipe.scheduler.set_timesteps(50)
    levels = [pipe.noise_level(k, 50) for k in (0, 10, 25, 49)]
    alphas, sigmas = [a for _, a, _ in levels], [s for _, _, s in levels]
    assert alphas == sorted(alphas, reverse=True) and sigmas == sorted(sigmas)
    assert alphas[0] > 0.99 and sigmas[-1] > 0.99


def test_a_fixed_seed_gives_this_midpoint_latent(components, keyframe_arrays):
    from latentween.pipeline import InterpolationPipeline, InterpolationRequest

    pipe = InterpolationPipeline.from_components(components, scheduler="ddim", max_batch=8)
    [middle] = pipe(keyframe_arrays, InterpolationRequest(fractions=[0, 0.5, 1], seed=1, steps=10, guidance=7.5))
    corner = middle.latent[0, :2, :3].flatten().tolist()
    assert corner == pytest.approx(PINNED_CORNER, abs=2e-3), corner


# the tiny checkpoint (seed 0), DDIM 10 steps, guidance 7.5, seed 1; across CPUs, thread counts and
# batch sizes latents agree within 1e-3 (docs/determinism.md)
PINNED_CORNER = [0.9020, -0.2195, -4.9650, -0.7410, -3.6327, -2.9043]


def test_the_engine_core_imports_nothing_of_the_daemon_the_cli_or_http():
    code = ("import sys, latentween.morph, latentween.pipeline, latentween.models, latentween.farm.chunks\n"
            "print(' '.join(m for m in sys.modules if m.startswith(('latentween.server', 'latentween.cli', "
            "'fastapi', 'starlette', 'uvicorn', 'httpx', 'latentween.client'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []


def test_importing_the_package_changes_no_process_state():
    code = ("import os; before = (dict(os.environ), os.umask(0o027)); os.umask(before[1])\n"
            "import latentween.images, latentween.client, latentween.media.video, latentween.models\n"
            "after = (dict(os.environ), os.umask(0o022))\n"
            "print(before[1] == after[1], sorted(set(after[0].items()) ^ set(before[0].items())))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "True []", out


def test_atomic_files_get_the_umask_mode_not_mkstemps(tmp_path):
    import os

    from latentween.atomic import umask, write_atomic

    write_atomic(tmp_path / "frame.png", b"png")
    assert (tmp_path / "frame.png").stat().st_mode & 0o777 == 0o666 & ~umask()
    assert not list(tmp_path.glob(".*.part")) and umask() == os.umask(umask()) and umask() == os.umask(umask())
