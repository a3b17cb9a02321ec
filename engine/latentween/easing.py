"""Timing: where each output frame lies between the keyframes, as pure functions.

An easing curve maps linear time x in [0, 1] to a morph fraction y in [0, 1], exactly like CSS
timing functions: `linear`, `ease`, `ease-in`, `ease-out`, `ease-in-out` and
`cubic-bezier(x1, y1, x2, y2)` (CSS Easing Functions Level 1, section 3). The bezier's x is solved
for t the way browsers do it (Newton's method, bisection when Newton stalls).

One restriction beyond CSS: y1 and y2 must lie in [0, 1]. An in-between frame cannot lie outside its
keyframes, and with y1, y2 in [0, 1] the curve never falls, so the fractions stay increasing.
Holds (a keyframe shown for extra frames) repeat output frames and are applied by the writers; they
never reach the engine, whose fractions must be strictly increasing.
"""
from __future__ import annotations

import re
from typing import Callable

Curve = Callable[[float], float]

# CSS Easing Functions Level 1, "cubic-bezier easing functions": the named curves' control points.
NAMED = {
    "ease": (0.25, 0.1, 0.25, 1.0),
    "ease-in": (0.42, 0.0, 1.0, 1.0),
    "ease-out": (0.0, 0.0, 0.58, 1.0),
    "ease-in-out": (0.42, 0.0, 0.58, 1.0),
}
_BEZIER = re.compile(r"^cubic-bezier\(([^,()]+),([^,()]+),([^,()]+),([^,()]+)\)$")
_EPSILON = 1e-12


def linear(x: float) -> float:
    return x


def cubic_bezier(x1: float, y1: float, x2: float, y2: float) -> Curve:
    """The CSS curve through (0, 0), (x1, y1), (x2, y2), (1, 1) as a function of x."""
    for name, value in (("x1", x1), ("y1", y1), ("x2", x2), ("y2", y2)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"cubic-bezier {name} must be within [0, 1], got {value:g}")
    # Polynomial coefficients of the Bernstein form: B(t) = ((a t + b) t + c) t per axis.
    cx, cy = 3 * x1, 3 * y1
    bx, by = 3 * (x2 - x1) - cx, 3 * (y2 - y1) - cy
    ax, ay = 1 - cx - bx, 1 - cy - by

    def sample_x(t: float) -> float:
        return ((ax * t + bx) * t + cx) * t

    def slope_x(t: float) -> float:
        return (3 * ax * t + 2 * bx) * t + cx

    def solve_t(x: float) -> float:
        t = x
        for _ in range(8):  # Newton converges in a few steps wherever the slope is not flat
            error = sample_x(t) - x
            if abs(error) < _EPSILON:
                return t
            slope = slope_x(t)
            if abs(slope) < 1e-9:
                break
            t -= error / slope
        lo, hi, t = 0.0, 1.0, x  # x(t) is monotonic on [0, 1] since x1, x2 lie in [0, 1]
        for _ in range(100):
            value = sample_x(t)
            if abs(value - x) < _EPSILON:
                break
            lo, hi = (t, hi) if value < x else (lo, t)
            t = 0.5 * (lo + hi)
        return t

    def curve(x: float) -> float:
        if x <= 0.0:
            return 0.0
        if x >= 1.0:
            return 1.0
        t = solve_t(x)
        return min(1.0, max(0.0, ((ay * t + by) * t + cy) * t))

    return curve


def canonical(spec: str) -> str:
    """Normalise an easing spec ('cubic-bezier( .42, 0, 1, 1 )' -> 'cubic-bezier(0.42,0,1,1)').

    Raises ValueError naming the problem when the spec is not a known curve.
    """
    text = "".join(spec.split()).lower()
    if text == "linear" or text in NAMED:
        return text
    match = _BEZIER.match(text)
    if not match:
        raise ValueError(f"unknown easing {spec!r}: use linear, ease, ease-in, ease-out, ease-in-out "
                         "or cubic-bezier(x1,y1,x2,y2)")
    try:
        values = [float(v) for v in match.groups()]
    except ValueError:
        raise ValueError(f"cubic-bezier needs four numbers, got {spec!r}") from None
    cubic_bezier(*values)  # validates the ranges
    return "cubic-bezier(" + ",".join(f"{v:g}" for v in values) + ")"


def parse_ease(spec: str) -> Curve:
    """The curve an easing spec names."""
    text = canonical(spec)
    if text == "linear":
        return linear
    if text in NAMED:
        return cubic_bezier(*NAMED[text])
    return cubic_bezier(*(float(v) for v in _BEZIER.match(text).groups()))


def eased_fractions(count: int, spec: str = "linear") -> list[float]:
    """Fractions of `count` evenly timed frames under an easing curve; first 0.0, last 1.0 exactly."""
    if count < 2:
        raise ValueError(f"needs at least 2 frames, got {count}")
    curve = parse_ease(spec)
    inner = [curve(i / (count - 1)) for i in range(1, count - 1)]
    return [0.0, *inner, 1.0]


def with_holds(frames: list, hold_start: int = 0, hold_end: int = 0) -> list:
    """The output timeline: the first item repeated `hold_start` extra times, the last `hold_end`."""
    if hold_start < 0 or hold_end < 0:
        raise ValueError("holds must not be negative")
    if not frames:
        return []
    return [frames[0]] * hold_start + list(frames) + [frames[-1]] * hold_end
