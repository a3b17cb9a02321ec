"""Consistency ranking (issue 17, latentween.consistency): a candidate's clean latent against the slerp of its
(aligned) parents, alone (--choose consistency) or with CLIP (--choose clip+consistency), through the pipeline
and the CLI on the tiny model."""
import json
import math
from types import SimpleNamespace

import pytest
import torch

from latentween.consistency import (FrameRanker, combine, consistency_scores, frame_expectations, standardise,
                                    used_scores)
from latentween.plan import PlannedFrame
from latentween.ranking import consistency_chooser
from latentween.method import slerp
from latentween.schemes import Start, blend, ours


def unit(x: float, y: float) -> torch.Tensor:
    """A (C=2, h=1, w=1) latent."""
    return torch.tensor([x, y], dtype=torch.float32).reshape(2, 1, 1)


class SwapAlignment:
    """Stands in for align.Alignment: hands the parents back swapped and remembers the fractions it was given."""

    def __init__(self):
        self.at = None

    def warp_parents(self, left, right, a, b, f):
        self.at = (a, b, f)
        return right, left


FRAME = PlannedFrame(index=1, left=0, right=2, level=1, local_fraction=1 / 3, parent_distance=1.0, noise=0.5)


def start(alignment=None) -> Start:
    """Parents (1, 0) and (0, 1) around frame 1, at fractions 0.25, 5/12, 0.75."""
    request = SimpleNamespace(scheme="ours", alignment=alignment, appearance="none", seed=0)
    return Start({0: unit(1, 0), 2: unit(0, 1)}, {}, [0.25, 5 / 12, 0.75], request, (1.0, 0.0))


def test_the_expected_latent_is_the_parents_slerp_at_the_local_fraction():
    expected = frame_expectations([FRAME, FRAME], start(), blend)
    assert list(expected) == [1] and expected[1].shape == (2, 1, 1)
    assert expected[1].flatten().tolist() == pytest.approx([math.cos(math.pi / 6), 0.5], abs=1e-6)


def test_the_expected_latent_is_what_ours_interpolates_before_the_noise():
    s = start()
    torch.testing.assert_close(frame_expectations([FRAME], s, blend)[1][None],
                               ours(s, SimpleNamespace(frame=FRAME), torch.zeros(2, 1, 1)))


def test_the_expected_latent_interpolates_the_aligned_parents():
    alignment = SwapAlignment()
    expected = frame_expectations([FRAME], start(alignment), blend)[1]
    assert alignment.at == (0.25, 0.75, 5 / 12)
    assert expected.flatten().tolist() == pytest.approx([0.5, math.cos(math.pi / 6)], abs=1e-6)


def test_the_consistency_score_is_the_negative_mean_squared_distance_pinned():
    expected = unit(math.cos(math.pi / 6), 0.5)
    scores = consistency_scores(torch.stack([unit(1, 0), unit(0, 1)]), expected)
    # (2 - sqrt 3) / 2 and (2 - 1) / 2: the squared chord lengths over two channels
    assert scores == pytest.approx([-(2 - math.sqrt(3)) / 2, -0.5], abs=1e-6)


def test_a_candidate_equal_to_the_expected_latent_scores_highest():
    expected = frame_expectations([FRAME], start(), blend)[1]
    candidates = torch.stack([unit(1, 0), expected, unit(0.5, 0.5), unit(0, 1)])
    scores = consistency_scores(candidates, expected)
    assert scores[1] == 0.0 and max(scores) == scores[1]


def test_closer_candidates_score_higher():
    scores = consistency_scores(torch.stack([unit(0.1, 0), unit(1, 0), unit(2, 0)]), unit(0, 0))
    assert scores[0] > scores[1] > scores[2]
    assert all(s < 0 for s in scores)


def test_standardised_scores_have_zero_mean_and_unit_std():
    assert standardise([1.0, 2.0, 3.0]).tolist() == pytest.approx([-math.sqrt(1.5), 0.0, math.sqrt(1.5)])


def test_equal_scores_standardise_to_zeros():
    assert standardise([0.3, 0.3]).tolist() == [0.0, 0.0]


def test_one_part_is_used_as_it_is():
    assert used_scores({"consistency": [-0.5, -0.1]}, {"consistency": 3.0}) == [-0.5, -0.1]


def test_combined_scores_sum_the_standardised_parts_with_the_consistency_weight():
    parts = {"clip": [1.0, 2.0, 3.0], "consistency": [-3.0, -1.0, -2.0]}
    z = math.sqrt(1.5)
    assert used_scores(parts, {"clip": 1.0, "consistency": 1.0}) == pytest.approx([-2 * z, z, z], abs=1e-6)
    assert combine(parts, {"clip": 1.0, "consistency": 0.5}) == pytest.approx([-1.5 * z, 0.5 * z, z], abs=1e-6)


class FakeRanker:
    def __init__(self, scores):
        self._scores = scores

    def scores(self, images, positive, negative):
        return self._scores


def test_the_consistency_chooser_picks_the_argmax_and_reports_its_part():
    chosen, scores, parts = consistency_chooser()(None, [None] * 3, [-0.4, -0.1, -0.2])
    assert chosen == 1 and scores == [-0.4, -0.1, -0.2] and parts == {"consistency": [-0.4, -0.1, -0.2]}


def test_clip_plus_consistency_reports_both_parts_and_the_weight_decides():
    clip = FakeRanker([0.3, 0.1, 0.2])
    consistency = [-0.9, -0.1, -0.2]

    def choose(weight):
        return consistency_chooser(clip, "p", "n", weight=weight)(None, [None] * 3, consistency)

    chosen, scores, parts = choose(1.0)
    assert parts == {"clip": [0.3, 0.1, 0.2], "consistency": consistency}
    # standardised: CLIP (1.22, -1.22, 0), consistency (-1.41, 0.84, 0.56); summed, the third leads
    assert chosen == 2 and scores == pytest.approx([-0.18, -0.38, 0.56], abs=0.01)
    assert choose(0.0)[0] == 0 and choose(10.0)[0] == 1


def test_a_plain_chooser_is_asked_as_before_and_records_no_parts():
    calls = []

    def plain(frame, images):
        calls.append(len(images))
        return 1, [0.0, 1.0]

    assert FrameRanker(plain)(None, [None, None], torch.zeros(2, 2, 1, 1)) == (1, [0.0, 1.0], None)
    assert calls == [2]


def test_the_pipelines_recorded_consistency_of_the_chosen_frame_is_its_distance_to_the_parents_slerp(
        pipe, keyframe_arrays):
    from latentween.pipeline import InterpolationRequest

    request = InterpolationRequest(fractions=[0, 0.5, 1], seed=2, steps=6, candidates=lambda level: 3)
    results = pipe(keyframe_arrays, request, chooser=consistency_chooser())
    (frame,) = results
    info = frame.info
    assert len(info["score_parts"]["consistency"]) == 3 and info["scores"] == info["score_parts"]["consistency"]
    keys = pipe.encode_images(keyframe_arrays).cpu()
    expected = slerp(keys[:1], keys[1:], 0.5)[0]
    assert consistency_scores(frame.latent[None], expected)[0] == pytest.approx(max(info["scores"]), abs=1e-5)
    assert info["chosen"] == info["scores"].index(max(info["scores"]))


def test_early_ranking_keeps_the_candidate_whose_predicted_clean_latent_is_most_consistent(pipe, keyframe_arrays):
    from latentween.pipeline import InterpolationRequest

    request = InterpolationRequest(fractions=[0, 0.5, 1], seed=2, steps=6, candidates=lambda level: 3, prune_at=0.5,
                                   keep=1, rank_early=True)
    (frame,) = pipe(keyframe_arrays, request, chooser=consistency_chooser())
    early = frame.info["early_ranking"]
    assert set(early["score_parts"]) == {"consistency"} and len(early["score_parts"]["consistency"]) == 3
    assert early["kept"] == [early["scores"].index(max(early["scores"]))] == [frame.info["chosen"]]


def morph(tiny_model, keyframe_files, out, *extra) -> dict:
    from latentween.cli import main

    code = main(["morph", *map(str, keyframe_files), "--out", str(out), "--model", str(tiny_model), "--frames", "5",
                 "--steps", "6", "--quiet", "--seed", "3", "--candidates", "3", "--prune-at", "0", *map(str, extra)])
    assert code == 0
    return json.loads((out / "manifest.json").read_text())


def generated(manifest) -> list[dict]:
    return [f for f in manifest["frames"] if f.get("source") == "generated"]


def test_choose_consistency_runs_through_the_cli_and_keeps_the_most_consistent_candidate(
        tiny_model, keyframe_files, tmp_path):
    manifest = morph(tiny_model, keyframe_files, tmp_path / "a", "--choose", "consistency")
    frames = generated(manifest)
    assert len(frames) == 3
    for f in frames:
        assert set(f["score_parts"]) == {"consistency"} and len(f["score_parts"]["consistency"]) == f["candidates"] == 3
        assert f["scores"] == f["score_parts"]["consistency"]
        assert f["chosen"] == f["scores"].index(max(f["scores"]))


def test_choose_clip_plus_consistency_records_both_parts(tiny_model, keyframe_files, tmp_path):
    manifest = morph(tiny_model, keyframe_files, tmp_path / "b", "--choose", "clip+consistency",
                     "--clip-model", tiny_model / "clip", "--consistency-weight", "2")
    assert manifest["conditioning"]["ranking"]["consistency_weight"] == 2.0
    for f in generated(manifest):
        assert set(f["score_parts"]) == {"clip", "consistency"}
        assert len(f["score_parts"]["clip"]) == len(f["score_parts"]["consistency"]) == len(f["scores"]) == 3
        assert combine(f["score_parts"], {"clip": 1.0, "consistency": 2.0}) == pytest.approx(f["scores"], abs=1e-5)
        assert f["chosen"] == f["scores"].index(max(f["scores"]))
