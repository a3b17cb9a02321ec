"""The appearance path (issue 17, latentween.appearance): the keyframes' per-channel latent statistics,
interpolated at each frame's fraction and imposed on its parents before noising (--appearance stats)."""
import json
from types import SimpleNamespace

import pytest
import torch

from latentween.appearance import adain, channel_stats, interpolated_stats, matched_parents, stats_affine
from latentween.method import noise_interpolate, slerp
from latentween.plan import PlannedFrame, PlannedRow
from latentween.schemes import Start, blend, ours


def latent(seed: int, mean: tuple, std: tuple) -> torch.Tensor:
    """A (1, C, 8, 8) latent with the given per-channel mean and std."""
    z = torch.randn(1, len(mean), 8, 8, generator=torch.Generator().manual_seed(seed))
    z = (z - z.mean(dim=(-2, -1), keepdim=True)) / z.std(dim=(-2, -1), keepdim=True, unbiased=False)
    return z * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)


def flat(stats) -> list[float]:
    """(mean, std) as one list: the means of every channel, then the stds."""
    return [v for t in stats for v in t.flatten().tolist()]


def test_channel_stats_are_per_channel_mean_and_population_std():
    z = torch.tensor([[[[1.0, 3.0]], [[2.0, 2.0]]]])  # (1, 2, 1, 2)
    assert flat(channel_stats(z)) == [2.0, 2.0, 1.0, 0.0]


def test_interpolated_stats_start_at_the_first_keyframe_and_move_linearly_to_the_second():
    a, b = latent(0, (1.0, -2.0), (1.0, 0.5)), latent(1, (-1.0, 2.0), (3.0, 0.5))
    assert flat(interpolated_stats(a, b, 0.0)) == pytest.approx(flat(channel_stats(a)), abs=1e-5)
    assert flat(interpolated_stats(a, b, 1.0)) == pytest.approx(flat(channel_stats(b)), abs=1e-5)
    # a quarter of the way is three quarters the first keyframe's (a swapped f would give 0.5 and 2.5 for the mean)
    assert flat(interpolated_stats(a, b, 0.25)) == pytest.approx([0.5, -1.0, 1.5, 0.5], abs=1e-5)


def test_adain_imposes_the_given_statistics():
    z = latent(2, (0.3, 0.1), (2.0, 1.0))
    mean, std = torch.tensor([-1.0, 4.0]).view(1, 2, 1, 1), torch.tensor([0.5, 2.0]).view(1, 2, 1, 1)
    assert flat(channel_stats(adain(z, mean, std))) == pytest.approx([-1.0, 4.0, 0.5, 2.0], abs=1e-4)


def test_adain_keeps_the_spatial_pattern_and_flips_no_channel():
    z = latent(3, (0.0, 1.0), (1.0, 2.0))
    target = torch.tensor([-3.0, 0.5]).view(1, 2, 1, 1), torch.tensor([0.5, 4.0]).view(1, 2, 1, 1)
    scale, _ = stats_affine(z, *target)
    assert (scale > 0).all()
    pattern = lambda x: (x - channel_stats(x)[0]) / channel_stats(x)[1]  # noqa: E731
    torch.testing.assert_close(pattern(adain(z, *target)), pattern(z), rtol=1e-4, atol=1e-4)


def test_equal_parents_take_the_statistics_interpolated_at_the_frames_fraction():
    a, b = latent(4, (1.0, 0.0), (1.0, 1.0)), latent(5, (-1.0, 2.0), (2.0, 1.0))
    parent = latent(6, (5.0, 5.0), (0.1, 0.1))
    left, right = matched_parents(parent, parent, 0.5, a, b, 0.75)
    assert torch.equal(left, right)
    assert flat(channel_stats(left)) == pytest.approx([-0.5, 1.5, 1.75, 1.0], abs=1e-3)  # EPS in the std


def test_matched_parents_keep_their_difference_up_to_the_channel_scale():
    a, b = latent(4, (1.0, 0.0), (1.0, 1.0)), latent(5, (-1.0, 2.0), (2.0, 1.0))
    left, right = latent(7, (1.0, 0.0), (1.0, 1.0)), latent(8, (-1.0, 2.0), (2.0, 1.0))
    new_left, new_right = matched_parents(left, right, 0.5, a, b, 0.5)
    ratio = (new_right - new_left) / (right - left)
    assert ratio.std(dim=(-2, -1)).max() < 1e-3  # one number per channel: shape and motion are untouched


def test_a_blend_of_distant_colours_takes_the_interpolated_statistics_not_the_slerps():
    # opposite channel means: the slerp cancels the means but keeps the norm, so the channels' spread
    # inflates far beyond either keyframe's (1); the matched parents' slerp keeps the keyframes' spread
    a, b = latent(9, (2.0, -2.0), (1.0, 1.0)), latent(10, (-2.0, 2.0), (1.0, 1.0))
    plain = slerp(a, b, 0.5)
    left, right = matched_parents(a, b, 0.5, a, b, 0.5)
    matched = slerp(left, right, 0.5)
    assert channel_stats(plain)[1].min() > 1.5
    assert flat(channel_stats(matched)) == pytest.approx([0.0, 0.0, 1.0, 1.0], abs=0.05)


def frame_start(appearance: str):
    frame = PlannedFrame(index=1, left=0, right=2, level=1, local_fraction=0.5, parent_distance=1.0, noise=0.5)
    latents = {0: latent(11, (2.0, -2.0), (1.0, 1.0))[0], 2: latent(12, (-2.0, 2.0), (1.0, 1.0))[0]}
    request = SimpleNamespace(alignment=None, appearance=appearance, scheme="ours")
    return Start(latents, {}, [0.0, 0.5, 1.0], request, (0.8, 0.6)), PlannedRow(frame, 0, 0)


def test_ours_without_appearance_is_the_papers_noise_interpolate():
    s, row = frame_start("none")
    eps = torch.randn(2, 8, 8, generator=torch.Generator().manual_seed(0))
    expected = noise_interpolate(s.latents[0][None], s.latents[2][None], 0.5, eps[None], 0.8, 0.6)
    assert torch.equal(ours(s, row, eps), expected)


def test_ours_with_stats_starts_from_the_matched_parents_and_its_blend_carries_the_stats():
    s, row = frame_start("stats")
    eps = torch.randn(2, 8, 8, generator=torch.Generator().manual_seed(0))
    left, right = matched_parents(s.latents[0][None], s.latents[2][None], 0.5, s.latents[0][None], s.latents[2][None],
                                  0.5)
    assert torch.equal(ours(s, row, eps), noise_interpolate(left, right, 0.5, eps[None], 0.8, 0.6))
    assert channel_stats(blend(s, row.frame))[1].flatten().tolist() == pytest.approx([1.0, 1.0], abs=0.05)


def test_appearance_stats_runs_through_the_cli_and_changes_only_the_generated_frames(tiny_model, keyframe_files,
                                                                                      tmp_path):
    from latentween.cli import main

    def morph(out, *extra):
        args = ["morph", *map(str, keyframe_files), "--out", str(out), "--model", str(tiny_model), "--frames", "5",
                "--steps", "6", "--candidates", "1", "--seed", "3", "--quiet", *extra]
        assert main(args) == 0
        return json.loads((out / "manifest.json").read_text())

    plain, stats = morph(tmp_path / "none"), morph(tmp_path / "stats", "--appearance", "stats")
    assert stats["settings"]["appearance"] == "stats" and plain["settings"]["appearance"] == "none"
    frames = lambda out: [p.read_bytes() for p in sorted(out.glob("frame_*.png"))]  # noqa: E731
    a, b = frames(tmp_path / "none"), frames(tmp_path / "stats")
    assert a[0] == b[0] and a[-1] == b[-1]
    assert a[2] != b[2]


def test_appearance_stats_is_refused_for_the_papers_baselines():
    from latentween.settings import MorphSettings

    assert MorphSettings(appearance="stats").appearance == "stats"
    with pytest.raises(ValueError, match="appearance"):
        MorphSettings(appearance="stats", scheme="interpolate-denoise")
