"""The interpolation pipeline on the tiny checkpoint: order, chunks, determinism, resume, schemes."""
import math

import numpy as np
import pytest
import torch

from latentween.method import add_noise, frame_generator, randn
from latentween.pipeline import InterpolationPipeline, InterpolationRequest
from latentween.plan import PlannedRow, ddim_index, make_plan

FRACTIONS_9 = [i / 8 for i in range(9)]


def request(**kw):
    base = dict(fractions=FRACTIONS_9, seed=3, steps=20, prompt="a red disk", negative="blue")
    base.update(kw)
    return InterpolationRequest(**base)


def latents_by_index(results):
    return {r.index: r.latent for r in results}


def test_frames_come_out_after_their_parents(pipe, keyframe_arrays):
    finished = {0, 8}
    for result in pipe.generate(keyframe_arrays, request()):
        left, right = result.info["parents"]
        assert left in finished and right in finished
        finished.add(result.index)
    assert finished == set(range(9))


# Across batch shapes the kernels may round differently (other CPUs, GPUs): frames are then equal
# within this tolerance, not bit-identical (docs/determinism.md).
LATENT_TOLERANCE = 1e-3


@pytest.fixture
def batch_sensitive(components):
    """Makes the tiny UNet's output depend on how many rows share a call, as the kernels of some CPUs
    and GPUs do in the last bits, but large enough to show on every machine: an identity test then
    fails wherever chunk composition is not fixed."""
    def hook(module, args, output):
        return (output[0] + 1e-3 * output[0].shape[0],) + tuple(output[1:])

    handle = components.unet.register_forward_hook(hook)
    yield
    handle.remove()


@pytest.mark.parametrize("max_batch", [1, 3, 5])
def test_other_batch_sizes_give_frames_within_the_stated_tolerance(components, keyframe_arrays, max_batch):
    reference = InterpolationPipeline.from_components(components, max_batch=16)(keyframe_arrays, request())
    other = InterpolationPipeline.from_components(components, max_batch=max_batch)(keyframe_arrays, request())
    for a, b in zip(reference, other):
        torch.testing.assert_close(a.latent, b.latent, rtol=0, atol=LATENT_TOLERANCE)


def test_the_batch_sensitive_unet_changes_frames_with_the_batch_size(components, keyframe_arrays, batch_sensitive):
    # what makes the identity tests below able to fail
    a = InterpolationPipeline.from_components(components, max_batch=16)(keyframe_arrays, request())
    b = InterpolationPipeline.from_components(components, max_batch=2)(keyframe_arrays, request())
    assert not torch.equal(a[0].latent, b[0].latent)


def test_the_same_job_twice_gives_bit_identical_frames(components, keyframe_arrays, batch_sensitive):
    a = InterpolationPipeline.from_components(components, max_batch=4)(keyframe_arrays, request())
    b = InterpolationPipeline.from_components(components, max_batch=4)(keyframe_arrays, request())
    for x, y in zip(a, b):
        assert torch.equal(x.latent, y.latent) and np.array_equal(x.image, y.image)


def test_resuming_reruns_unfinished_chunks_exactly_as_the_first_run(components, keyframe_arrays, batch_sensitive):
    # max_batch 4 with guidance: chunks of 2 frames; level 2 is (2, 6), level 3 is (1, 3), (5, 7)
    pipe = InterpolationPipeline.from_components(components, max_batch=4)
    full = latents_by_index(pipe(keyframe_arrays, request()))
    done = {i: full[i] for i in (4, 2, 1)}  # 6 and 3 unfinished: their chunks run again with 2 and 1
    resumed = latents_by_index(pipe(keyframe_arrays, request(), done=done))
    assert set(resumed) == {3, 5, 6, 7}
    for index, latent in resumed.items():
        assert torch.equal(latent, full[index]), f"frame {index} differs after resuming"


def test_a_chunk_whose_frames_are_all_finished_is_skipped(components, keyframe_arrays):
    pipe = InterpolationPipeline.from_components(components, max_batch=4)
    full = latents_by_index(pipe(keyframe_arrays, request()))
    pipe.counter.calls = 0
    resumed = pipe(keyframe_arrays, request(), done={i: full[i] for i in (4, 2, 6, 1, 3)})
    assert [r.index for r in resumed] == [5, 7]
    level3 = ddim_index(make_plan(FRACTIONS_9, 0.3, 0.55)[2][0].noise, 20)
    assert pipe.counter.calls == level3 + 1  # one chunk, one call per step


def test_frames_record_the_chunk_they_were_made_in(components, keyframe_arrays):
    results = InterpolationPipeline.from_components(components, max_batch=4)(keyframe_arrays, request())
    assert {r.index: r.info["chunk"] for r in results} == {4: [1, 0], 2: [2, 0], 6: [2, 0], 1: [3, 0], 3: [3, 0],
                                                          5: [3, 1], 7: [3, 1]}


def test_a_different_seed_gives_different_frames(pipe, keyframe_arrays):
    a = pipe(keyframe_arrays, request(seed=1))
    b = pipe(keyframe_arrays, request(seed=2))
    assert all(not torch.equal(x.latent, y.latent) for x, y in zip(a, b))


def test_prepare_latents_noises_both_parents_with_the_frame_noise(pipe, keyframe_arrays):
    # identical keyframes: with shared noise the slerp of the two noised parents is the noised parent
    same = [keyframe_arrays[0], keyframe_arrays[0]]
    req = request()
    z = pipe.encode_images(same)
    frame = make_plan(FRACTIONS_9, req.min_noise, req.max_noise)[0][0]
    row = PlannedRow(frame, 0, ddim_index(frame.noise, req.steps))
    begin, alpha, sigma = pipe.noise_level(row.start, req.steps)
    start = pipe.prepare_latents([row], {0: z[0], 8: z[1]}, {}, FRACTIONS_9, req, (alpha, sigma))
    eps = randn(z[0].shape, frame_generator(req.seed, 0.5, 0))
    ab = float(pipe.scheduler.alphas_cumprod[int(pipe.scheduler.timesteps[begin])])
    torch.testing.assert_close(start[0], add_noise(z[0], eps, ab**0.5, (1 - ab) ** 0.5), rtol=1e-5, atol=1e-5)


def expected_unet_calls(fractions, req, max_batch, halves=2):
    """Calls when each chunk of max_batch // halves candidates takes one call per step."""
    calls = 0
    for level in make_plan(fractions, req.min_noise, req.max_noise):
        per_start = {}
        for f in level:
            k = ddim_index(f.noise, req.steps)
            per_start[k] = per_start.get(k, 0) + 1
        for k, frames in per_start.items():
            calls += (k + 1) * math.ceil(frames / (max_batch // halves))
    return calls


def test_a_level_and_both_guidance_halves_share_unet_calls(components, keyframe_arrays):
    pipe = InterpolationPipeline.from_components(components, max_batch=8)
    req = request(fractions=[i / 16 for i in range(17)])
    pipe(keyframe_arrays, req)
    assert pipe.counter.calls == expected_unet_calls(req.fractions, req, 8)
    one_per_frame = sum((ddim_index(f.noise, req.steps) + 1) * 2 for level in make_plan(req.fractions, 0.3, 0.55) for f in level)
    assert pipe.counter.calls < one_per_frame / 2


def test_frames_of_one_level_with_different_noise_run_in_separate_chunks(components, keyframe_arrays):
    # 6 frames: level 2 has parents 0.4 and 0.6 apart, so two start timesteps in one level
    fractions = [i / 5 for i in range(6)]
    req = request(fractions=fractions)
    level_starts = [{ddim_index(f.noise, req.steps) for f in level} for level in make_plan(fractions, 0.3, 0.55)]
    assert any(len(s) > 1 for s in level_starts)
    pipe = InterpolationPipeline.from_components(components, max_batch=64)
    pipe(keyframe_arrays, req)
    assert pipe.counter.calls == expected_unet_calls(fractions, req, 64)


def test_guidance_1_runs_only_the_conditional_half(components, keyframe_arrays):
    pipe = InterpolationPipeline.from_components(components, max_batch=64)
    req = request(guidance=1.0)
    pipe(keyframe_arrays, req)
    steps = sum(ddim_index(f.noise, req.steps) + 1 for level in make_plan(FRACTIONS_9, 0.3, 0.55) for f in level)
    assert pipe.counter.rows == steps


def test_interpolate_only_makes_no_unet_calls_and_slerps_the_keyframes(pipe, keyframe_arrays):
    results = pipe(keyframe_arrays, request(scheme="interpolate-only"))
    assert pipe.counter.calls == 0
    from latentween.method import slerp

    z = pipe.encode_images(keyframe_arrays)
    for r in results:
        torch.testing.assert_close(r.latent, slerp(z[:1], z[1:], r.fraction)[0].cpu())


@pytest.mark.parametrize("scheme", ["interpolate-denoise", "did", "did-no-shared-noise"])
def test_each_baseline_scheme_differs_from_ours(pipe, keyframe_arrays, scheme):
    ours = pipe(keyframe_arrays, request())
    other = pipe(keyframe_arrays, request(scheme=scheme))
    assert len(other) == 7
    assert not torch.equal(ours[0].latent, other[0].latent)  # frame 1: level 3, parents differ by scheme


def test_did_shared_and_unshared_noise_differ_only_after_level_one_parents(pipe, keyframe_arrays):
    shared = latents_by_index(pipe(keyframe_arrays, request(scheme="did")))
    unshared = latents_by_index(pipe(keyframe_arrays, request(scheme="did-no-shared-noise")))
    assert not torch.equal(shared[4], unshared[4])


def test_eta_above_zero_is_seeded_and_changes_the_result(components, keyframe_arrays):
    pipe = InterpolationPipeline.from_components(components, scheduler="ddim")
    a = pipe(keyframe_arrays, request(eta=0.5))
    b = pipe(keyframe_arrays, request(eta=0.5))
    c = pipe(keyframe_arrays, request(eta=0.0))
    assert all(torch.equal(x.latent, y.latent) for x, y in zip(a, b))
    assert not torch.equal(a[3].latent, c[3].latent)


def test_progress_reaches_its_total_and_cancel_stops_the_job(pipe, keyframe_arrays):
    events = []
    pipe(keyframe_arrays, request(), callback=events.append)
    assert events[-1]["done"] == events[-1]["total"] > 0
    from latentween.errors import Cancelled

    with pytest.raises(Cancelled):
        pipe(keyframe_arrays, request(), should_cancel=lambda: True)


def test_check_inputs_rejects_sizes_the_vae_cannot_take(pipe):
    bad = [np.zeros((60, 64, 3), np.float32)] * 2
    with pytest.raises(ValueError, match="multiple of 8"):
        pipe(bad, request())


def test_an_unknown_scheme_is_refused_not_run_as_another(pipe, keyframe_arrays):
    from dataclasses import replace

    with pytest.raises(ValueError, match="unknown scheme 'our'"):
        pipe(keyframe_arrays, replace(request(), scheme="our"))


def test_every_scheme_the_settings_accept_has_a_start_and_no_other():
    from typing import get_args

    from latentween.schemes import STARTS
    from latentween.settings import Scheme

    assert set(STARTS) == set(get_args(Scheme))
