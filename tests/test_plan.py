"""The recursive plan and its noise schedule (METHOD.md 2)."""
import pytest

from latentween.plan import bisection_plan, ddim_index, level_chunks, make_plan, noise_for_distance, reference_candidates


def even(n):
    return [i / (n - 1) for i in range(n)]


def test_method_example_gives_ddim_indices_110_93_76_60():
    plan = make_plan(even(17), 0.30, 0.55)
    per_level = [{ddim_index(f.noise, 200) for f in level} for level in plan]
    assert per_level == [{110}, {93}, {76}, {60}]


def test_method_example_timesteps_match_the_reference(components):
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler.from_config(components.scheduler_config)
    scheduler.set_timesteps(200)
    ascending = scheduler.timesteps.flip(0)
    assert [int(ascending[k]) for k in (110, 93, 76, 60)] == [551, 466, 381, 301]


def test_power_of_two_plan_is_the_reference_bisection():
    levels = bisection_plan(even(17))
    assert [sorted(k for k, _, _ in level) for level in levels] == [
        [8], [4, 12], [2, 6, 10, 14], [1, 3, 5, 7, 9, 11, 13, 15]]
    assert (4, 0, 8) in levels[1] and (12, 8, 16) in levels[1]


@pytest.mark.parametrize("n", [3, 5, 6, 7, 10, 13, 24, 100])
def test_every_frame_is_planned_once_after_both_parents(n):
    finished = {0, n - 1}
    for level in bisection_plan(even(n)):
        for index, left, right in level:
            assert left in finished and right in finished, "a parent must be finished before its child"
            assert left < index < right
            assert index not in finished
        finished |= {index for index, _, _ in level}
    assert finished == set(range(n))


def test_odd_gaps_split_at_the_frame_nearest_the_midpoint():
    fractions = [0.0, 0.1, 0.2, 0.6, 1.0]
    levels = bisection_plan(fractions)
    assert levels[0] == [(3, 0, 4)]  # 0.6 is nearer 0.5 than 0.2


def test_noise_falls_with_the_parents_distance_for_any_frame_count():
    plan = make_plan(even(12), 0.3, 0.55)
    frames = sorted((f for level in plan for f in level), key=lambda f: -f.parent_distance)
    noises = [f.noise for f in frames]
    assert noises == sorted(noises, reverse=True)
    assert noises[0] == pytest.approx(0.55) and noises[-1] == pytest.approx(0.3)


def test_noise_uses_the_log_distance_between_first_and_closest_parents():
    assert noise_for_distance(1.0, 0.125, 0.3, 0.55) == pytest.approx(0.55)
    assert noise_for_distance(0.25, 0.125, 0.3, 0.55) == pytest.approx(0.3 + 0.25 / 3)
    assert noise_for_distance(0.125, 0.125, 0.3, 0.55) == pytest.approx(0.3)


def test_single_level_plan_uses_the_max_noise():
    (level,) = make_plan(even(3), 0.3, 0.55)
    assert level[0].noise == pytest.approx(0.55)


def test_convex_and_concave_curves_bend_either_side_of_linear():
    args = (0.25, 0.125, 0.3, 0.55)
    linear = noise_for_distance(*args, "linear")
    assert noise_for_distance(*args, "convex") < linear < noise_for_distance(*args, "concave")


def test_explicit_fractions_give_local_fractions_between_parents():
    plan = make_plan([0.0, 0.1, 0.3, 1.0], 0.3, 0.55)
    first = plan[0][0]
    assert (first.index, first.left, first.right) == (2, 0, 3)
    assert first.local_fraction == pytest.approx(0.3)
    second = plan[1][0]
    assert (second.index, second.left, second.right) == (1, 0, 2)
    assert second.local_fraction == pytest.approx(1 / 3)


def test_ddim_index_truncates_like_the_reference_and_stays_in_range():
    assert ddim_index(0.3, 200) == 60
    assert ddim_index(0.4667, 200) == 93
    assert ddim_index(1.0, 50) == 49
    assert ddim_index(0.0, 50) == 0


def test_reference_candidate_schedule_is_8_then_one_fewer_never_below_3():
    assert [reference_candidates(level) for level in range(1, 9)] == [8, 7, 6, 5, 4, 3, 3, 3]


# -- fixed chunks (docs/determinism.md) --------------------------------------------------------------

def chunk_shape(chunks):
    return [[(row.frame.index, row.candidate) for row in chunk] for chunk in chunks]


def test_chunks_hold_whole_frames_in_plan_order_up_to_the_size():
    level = make_plan(even(9), 0.3, 0.55)[2]  # frames 1, 3, 5, 7
    chunks = level_chunks(level, 2, [5] * 4, 4)
    assert chunk_shape(chunks) == [[(1, 0), (1, 1), (3, 0), (3, 1)], [(5, 0), (5, 1), (7, 0), (7, 1)]]


def test_a_frame_with_more_candidates_than_the_size_is_a_chunk_of_its_own():
    level = make_plan(even(9), 0.3, 0.55)[1]  # frames 2, 6
    assert chunk_shape(level_chunks(level, 3, [7, 7], 2)) == [[(2, 0), (2, 1), (2, 2)], [(6, 0), (6, 1), (6, 2)]]


def test_rows_of_a_chunk_share_one_start_index():
    level = make_plan(even(6), 0.3, 0.55)[1]
    starts = [ddim_index(f.noise, 20) for f in level]
    assert len(set(starts)) == 2
    chunks = level_chunks(level, 1, starts, 8)
    assert len(chunks) == 2 and all(len({row.start for row in chunk}) == 1 for chunk in chunks)
    assert chunks[0][0].start == max(starts)  # the noisiest first
