"""The method's pure functions (METHOD.md 1): slerp, forward noising, shared noise, per-frame seeds."""
import math

import pytest
import torch

from latentween.method import add_noise, frame_generator, noise_interpolate, randn, slerp


def test_slerp_returns_the_endpoints_at_0_and_1():
    a, b = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)


def test_slerp_of_orthogonal_unit_vectors_stays_on_the_sphere():
    a = torch.tensor([[1.0, 0.0]])
    b = torch.tensor([[0.0, 1.0]])
    mid = slerp(a, b, 0.5)
    torch.testing.assert_close(mid, torch.tensor([[math.sqrt(0.5), math.sqrt(0.5)]]))
    assert mid.norm().item() == pytest.approx(1.0)  # lerp would give 0.707


def test_slerp_interpolates_the_angle_linearly():
    a = torch.tensor([[1.0, 0.0]])
    b = torch.tensor([[0.0, 1.0]])
    out = slerp(a, b, 1 / 3)
    assert math.atan2(out[0, 1], out[0, 0]) == pytest.approx(math.pi / 6)


def test_slerp_falls_back_to_lerp_for_parallel_vectors():
    a = torch.randn(1, 4, 8, 8)
    out = slerp(a, 2 * a, 0.25)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, 1.25 * a)


def test_slerp_treats_each_sample_of_a_batch_on_its_own():
    a, b = torch.randn(3, 4, 4, 4), torch.randn(3, 4, 4, 4)
    t = torch.tensor([0.1, 0.5, 0.9])
    batched = slerp(a, b, t)
    for i in range(3):
        torch.testing.assert_close(batched[i:i + 1], slerp(a[i:i + 1], b[i:i + 1], float(t[i])))


def test_slerp_computes_in_float64_and_keeps_the_input_dtype():
    a, b = torch.randn(1, 16, dtype=torch.float16), torch.randn(1, 16, dtype=torch.float16)
    assert slerp(a, b, 0.5).dtype == torch.float16


def test_add_noise_is_the_forward_process():
    z0, eps = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    torch.testing.assert_close(add_noise(z0, eps, 0.8, 0.6), 0.8 * z0 + 0.6 * eps)


def test_noise_interpolate_shares_one_noise_between_both_parents():
    z, eps = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    # identical parents with shared noise stay exactly the noised parent, for any fraction
    torch.testing.assert_close(noise_interpolate(z, z, 0.3, eps, 0.8, 0.6), add_noise(z, eps, 0.8, 0.6))


def test_frame_generator_depends_on_seed_fraction_and_candidate_only():
    base = randn((4, 8, 8), frame_generator(7, 0.5, 0))
    torch.testing.assert_close(base, randn((4, 8, 8), frame_generator(7, 0.5, 0)), rtol=0, atol=0)
    for other in (frame_generator(8, 0.5, 0), frame_generator(7, 0.25, 0), frame_generator(7, 0.5, 1)):
        assert not torch.equal(base, randn((4, 8, 8), other))
