"""plugin/timeline.py, the add-on's arithmetic of where in-between frames go: it imports no bpy, so it is
tested here without Blender."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _timeline():
    """plugin/timeline.py imports no bpy, so its arithmetic is tested here without Blender."""
    name = "latentween_plugin_timeline"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "plugin" / "timeline.py")
        sys.modules[name] = importlib.util.module_from_spec(spec)  # dataclasses look their module up
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


# -- timeline arithmetic (plain Python, no Blender) -----------------------------------------------

def test_a_gap_is_filled_with_exactly_its_frames_between_the_two_keyframes():
    t = _timeline()
    a, b = t.Span("A", 2, 1, 11), t.Span("B", 1, 16, 26)
    p = t.fill_gap(b, a, [a, b, t.Span("C", 1, 12, 13)])
    assert (p.first_at, p.last_at, p.frames, list(p.keep), p.start) == (10, 16, 7, [1, 2, 3, 4, 5], 11)
    assert p.channel == 2  # channel 1 has C inside the gap


def test_a_transition_needs_the_strips_to_meet_and_show_enough_frames():
    t = _timeline()
    a, b = t.Span("A", 1, 1, 13), t.Span("B", 1, 13, 25)
    p = t.transition(a, b, 7, [a, b])
    assert (p.start, p.first_at, p.last_at, p.length, p.channel) == (10, 10, 16, 7, 2)
    for args, words in (((a, t.Span("B", 1, 15, 25), 6), "2 frames apart"),
                        ((a, b, 30), "'A' shows 12 frames before the cut"),
                        ((a, t.Span("B", 1, 13, 14), 6), "'B' shows 1 frames after the cut")):
        with pytest.raises(t.MorphError, match=words):
            t.transition(*args, [])


def test_a_gap_between_touching_strips_is_refused_in_one_line():
    t = _timeline()
    with pytest.raises(t.MorphError, match="leave no gap to fill; use Transition"):
        t.fill_gap(t.Span("A", 1, 1, 13), t.Span("B", 1, 13, 25), [])


def test_a_movie_frame_counts_from_the_uncut_start_plus_the_split_offset():
    assert _timeline().movie_frame(at=38, frame_start=21, animation_offset_start=10) == 27


def test_a_movie_at_its_own_rate_in_another_scene_steps_by_the_rate_rounded_half_up():
    """The frames Blender 4.2, 4.4 and 5.0 rendered for movies added with Add > Movie to a 24 fps scene."""
    t = _timeline()
    assert [t.movie_frame(at, 1, 0, rate=12 / 24) for at in range(1, 8)] == [0, 1, 1, 2, 2, 3, 3]
    assert [t.movie_frame(at, 1, 0, rate=30 / 24) for at in range(1, 9)] == [0, 1, 3, 4, 5, 6, 8, 9]
    # split at 12, the right part moved to 21: the offset counts movie frames (11 / 2 rounds to 6)
    assert t.movie_frame(at=29, frame_start=21, animation_offset_start=6, rate=12 / 24) == 10


def test_a_slower_movies_last_timeline_frame_holds_its_last_movie_frame():
    # 30 frames at 12 fps fill 60 frames at 24; the last, 59 / 2 = 29.5, rounds past the movie's end
    t = _timeline()
    assert t.movie_frame(at=60, frame_start=1, animation_offset_start=0, rate=0.5, held=30) == 29
    assert t.movie_frame(at=70, frame_start=21, animation_offset_start=5, rate=0.5, held=25) == 29


def test_unfinished_frames_show_the_nearest_finished_one():
    assert _timeline().stand_ins(range(1, 8), [4]) == {i: 4 for i in (1, 2, 3, 5, 6, 7)}
    assert _timeline().stand_ins(range(1, 8), [2, 4, 6]) == {1: 2, 3: 2, 5: 4, 7: 6}
    assert _timeline().stand_ins(range(1, 8), []) == {}
