"""The interpolation pipeline on the tiny checkpoint: order, batching, determinism, schemes."""
import math

import numpy as np
import pytest
import torch

from latentween.method import add_noise, frame_generator, randn
from latentween.pipeline import Candidate, InterpolationPipeline, InterpolationRequest
from latentween.plan import ddim_index, make_plan

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


@pytest.mark.parametrize("max_batch", [1, 3, 5])
def test_same_seed_gives_bit_identical_frames_whatever_the_batch_size(components, keyframe_arrays, max_batch):
    reference = InterpolationPipeline.from_components(components, max_batch=16)(keyframe_arrays, request())
    other = InterpolationPipeline.from_components(components, max_batch=max_batch)(keyframe_arrays, request())
    for a, b in zip(reference, other):
        assert torch.equal(a.latent, b.latent), f"frame {a.index} differs with max_batch={max_batch}"
        assert np.array_equal(a.image, b.image)


def test_resuming_with_finished_frames_gives_the_same_remaining_frames(pipe, keyframe_arrays):
    full = latents_by_index(pipe(keyframe_arrays, request()))
    done = {i: full[i] for i in (4, 2)}  # level 1 and part of level 2 finished earlier
    resumed = latents_by_index(pipe(keyframe_arrays, request(), done=done))
    assert set(resumed) == set(range(1, 8)) - set(done)
    for index, latent in resumed.items():
        assert torch.equal(latent, full[index]), f"frame {index} differs after resuming"


def test_a_different_seed_gives_different_frames(pipe, keyframe_arrays):
    a = pipe(keyframe_arrays, request(seed=1))
    b = pipe(keyframe_arrays, request(seed=2))
    assert all(not torch.equal(x.latent, y.latent) for x, y in zip(a, b))


def test_prepare_latents_noises_both_parents_with_the_frame_noise(pipe, keyframe_arrays):
    # identical keyframes: with shared noise the slerp of the two noised parents is the noised parent
    same = [keyframe_arrays[0], keyframe_arrays[0]]
    req = request()
    pipe.scheduler.set_timesteps(req.steps)
    z = pipe.encode_images(same)
    frame = make_plan(FRACTIONS_9, req.min_noise, req.max_noise)[0][0]
    cand = Candidate(frame, 0, ddim_index(frame.noise, req.steps))
    start = pipe.prepare_latents([cand], {0: z[0], 8: z[1]}, {}, FRACTIONS_9, req)
    eps = randn(z[0].shape, frame_generator(req.seed, 0.5, 0))
    expected = add_noise(z[0], eps, pipe.alpha_bar(cand.start))
    torch.testing.assert_close(start[0], expected, rtol=1e-5, atol=1e-5)


def expected_unet_calls(fractions, req, max_batch, halves=2):
    """Calls when every level runs as one batch: each step evaluates all frames active at it."""
    calls = 0
    for level in make_plan(fractions, req.min_noise, req.max_noise):
        starts = [ddim_index(f.noise, req.steps) for f in level]
        for k in range(max(starts), -1, -1):
            rows = halves * sum(1 for s in starts if s >= k)
            calls += math.ceil(rows / max_batch)
    return calls


def test_a_level_and_both_guidance_halves_share_unet_calls(components, keyframe_arrays):
    pipe = InterpolationPipeline.from_components(components, max_batch=8)
    req = request(fractions=[i / 16 for i in range(17)])
    pipe(keyframe_arrays, req)
    assert pipe.counter.calls == expected_unet_calls(req.fractions, req, 8)
    one_per_frame = sum((ddim_index(f.noise, req.steps) + 1) * 2 for level in make_plan(req.fractions, 0.3, 0.55) for f in level)
    assert pipe.counter.calls < one_per_frame / 2


def test_frames_with_different_noise_levels_share_a_batch(components, keyframe_arrays):
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


def test_eta_above_zero_is_seeded_and_changes_the_result(pipe, keyframe_arrays):
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
