"""Timing: easing curves like CSS, eased frame fractions, holds, and the settings/CLI that use them."""
import pytest

from latentween.easing import canonical, cubic_bezier, eased_fractions, parse_ease, with_holds
from latentween.settings import MorphSettings


def dense_bezier(x1, y1, x2, y2, x):
    """Independent oracle: plain bisection on the Bernstein form, then y at that t."""
    def bernstein(p1, p2, t):
        return 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3

    lo, hi = 0.0, 1.0
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if bernstein(x1, x2, mid) < x else (lo, mid)
    return bernstein(y1, y2, (lo + hi) / 2)


def test_linear_fractions_are_evenly_spaced():
    assert eased_fractions(5) == [0.0, 0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize("name, points", [
    ("ease", (0.25, 0.1, 0.25, 1.0)), ("ease-in", (0.42, 0.0, 1.0, 1.0)),
    ("ease-out", (0.0, 0.0, 0.58, 1.0)), ("ease-in-out", (0.42, 0.0, 0.58, 1.0)),
])
def test_named_curves_match_the_css_control_points(name, points):
    curve = parse_ease(name)
    for x in (0.1, 0.3, 0.5, 0.8, 0.95):
        assert curve(x) == pytest.approx(dense_bezier(*points, x), abs=1e-9)


def test_a_custom_cubic_bezier_is_solved_for_x_not_t():
    curve = cubic_bezier(0.9, 0.1, 0.1, 0.9)  # x(t) far from t: solving y at t = x would be wrong
    assert curve(0.3) == pytest.approx(dense_bezier(0.9, 0.1, 0.1, 0.9, 0.3), abs=1e-9)
    assert abs(curve(0.3) - 0.3) > 0.01


def test_ease_in_starts_slow_and_ease_out_ends_slow():
    ease_in, ease_out = eased_fractions(9, "ease-in"), eased_fractions(9, "ease-out")
    assert ease_in[1] - ease_in[0] < ease_in[-1] - ease_in[-2]
    assert ease_out[1] - ease_out[0] > ease_out[-1] - ease_out[-2]


def test_ease_in_out_is_symmetric_with_exact_ends():
    values = eased_fractions(7, "ease-in-out")
    assert values[0] == 0.0 and values[-1] == 1.0 and values[3] == pytest.approx(0.5, abs=1e-9)
    assert [a + b for a, b in zip(values, reversed(values))] == pytest.approx([1.0] * 7, abs=1e-9)


def test_spelling_of_a_bezier_is_normalised():
    assert canonical(" cubic-bezier( .42, 0, 1, 1 ) ") == "cubic-bezier(0.42,0,1,1)"
    assert parse_ease("cubic-bezier(0.42,0,1,1)")(0.4) == parse_ease("ease-in")(0.4)


@pytest.mark.parametrize("spec, words", [
    ("bounce", "unknown easing"), ("cubic-bezier(0.1,0.2,0.3)", "unknown easing"),
    ("cubic-bezier(a,0,1,1)", "four numbers"), ("cubic-bezier(1.5,0,1,1)", "x1 must be within"),
    ("cubic-bezier(0.3,-0.5,0.6,1.2)", "y1 must be within"),
])
def test_bad_easing_specs_are_refused_with_the_reason(spec, words):
    with pytest.raises(ValueError, match=words):
        canonical(spec)


def test_holds_repeat_the_first_and_last_frames():
    assert with_holds(["a", "b", "c"], 2, 1) == ["a", "a", "a", "b", "c", "c"]
    assert with_holds(["a", "b"]) == ["a", "b"]


def test_settings_apply_the_easing_to_the_frame_fractions():
    settings = MorphSettings(frames=9, ease="ease-in")
    assert settings.frame_fractions() == eased_fractions(9, "ease-in")
    assert settings.output_count() == 9


def test_settings_refuse_an_ease_with_explicit_fractions():
    with pytest.raises(ValueError, match="cannot be combined"):
        MorphSettings(fractions=[0, 0.5, 1], ease="ease-in")


def test_the_cli_names_the_bad_ease_and_exits_2(keyframe_files, tmp_path, capsys):
    from latentween.cli import main

    assert main(["morph", *map(str, keyframe_files), "--out", str(tmp_path / "o"), "--ease", "wobble"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --ease") and "unknown easing" in err
