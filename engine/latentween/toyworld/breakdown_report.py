"""The report's failure breakdown, pop-at-the-ends tables and worst.png (issue 17)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .failures import CODES, COPY_TOL, KINDS


def _num(v, digits=2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def render_markdown(report: dict) -> list[str]:
    """Markdown lines of the failure and pop tables for every scheme that has them."""
    schemes = {name: s for name, s in report["schemes"].items() if "failures" in s}
    if not schemes:
        return []
    lines = ["", "## Failures: why a frame is not a true in-between", "",
             "Each such frame gets the first kind that holds, in this order (toyworld/failures.py; the shapes "
             "world's per object, toyworld/shapes_failures.py): "
             "`wrong count` (no object, or not one disk even in its own colour), `blend` (off-manifold and better "
             "explained by a partly transparent mix of both keyframes), `wrong colour` (an object in a colour "
             "the world has not, or a hue off the short arc between the keyframes'), `wrong shape` (shapes world: "
             "an outline not of its kind, or parts the fitted objects do not explain), `copy of a parent` (within "
             f"{COPY_TOL:g} of the keyframes' distance from a keyframe the frame's fraction is not near), "
             "`off-path` (any other valid frame). Cells: count (share of all in-between frames).", "",
             "| scheme | frames | true in-between | " + " | ".join(KINDS) + " |", "|---" * (len(KINDS) + 3) + "|"]
    for name, s in schemes.items():
        b = s["failures"]
        true = b["frames"] - sum(b["counts"].values())
        lines.append(f"| {name} | {b['frames']} | {true} | " + " | ".join(
            f"{b['counts'][k]} ({b['shares'][k]:.2f})" for k in KINDS) + " |")
    for name, s in schemes.items():
        per = s["failures"]["per_position"]
        lines += ["", f"### Failures per frame position: {name} (share of that position's frames)", "",
                  "| kind | " + " | ".join(per) + " |", "|---" * (len(per) + 1) + "|"]
        for k in KINDS:
            lines.append(f"| {k} | " + " | ".join(f"{per[p][k]:.2f}" for p in per) + " |")
    lines += ["", "## Pop at the ends", "",
              "Medians over frames, in-betweens against keyframes (the input files): edge width is the 10-90% rise "
              "of the disk's coverage across its fitted edge (px; a world render's 1-px ramp is about 0.8); halo is "
              "the brightness excess (0-1) of a ring 1-3 px outside the edge over the frame's background; dark "
              "centre is the core's brightness deficit against mid-radius. First/last step: the parameter distance "
              "of frames 0->1 and N-1->N over the sequence's median step (median over sequences; 1 = no pop). The "
              "shapes world has no look measures (they are the disk's) and measures steps in the scorer's normalised "
              "units.", "",
              "| scheme | edge width px (in-betweens / keyframes) | halo | dark centre | first step / median | "
              "last step / median | median step px |", "|---" * 7 + "|"]
    for name, s in schemes.items():
        e = s["pop"]
        lines.append(
            f"| {name} | {_num(e['edge_width']['inbetweens'])} / {_num(e['edge_width']['keyframes'])} | "
            f"{_num(e['halo']['inbetweens'], 3)} / {_num(e['halo']['keyframes'], 3)} | "
            f"{_num(e['dark_centre']['inbetweens'], 3)} / {_num(e['dark_centre']['keyframes'], 3)} | "
            f"{_num(e['end_steps']['first_over_median'])} | {_num(e['end_steps']['last_over_median'])} | "
            f"{_num(e['end_steps']['median_step_px'])} |")
    return lines


def worst_pairs(kinds: Sequence[Sequence[Optional[str]]], k: int) -> list[int]:
    """Indices of the `k` pairs with the fewest true in-betweens (ties: lower index first)."""
    true = [sum(kind is None for kind in row) for row in kinds]
    return sorted(range(len(kinds)), key=lambda i: (true[i], i))[:k]


def write_worst(path: Path, out: Path, scheme: str, kinds: Sequence[Sequence[Optional[str]]], k: int,
                frames: int) -> list[int]:
    """worst.png: one row per worst pair of `scheme`, its frames left to right, each frame over its
    failure code (ok for a true in-between, key for a keyframe). Returns the pairs drawn."""
    import cv2

    from .evaluate import _read_rgb, _write_rgb

    label_w, size, code_h, gap = 110, 64, 14, 4
    text = dict(fontFace=cv2.FONT_HERSHEY_SIMPLEX, fontScale=0.35, color=(0, 0, 0), thickness=1, lineType=cv2.LINE_AA)
    legend = np.full((2 * code_h, label_w + frames * size, 3), 255, np.uint8)
    cv2.putText(legend, f"{scheme}: worst pairs", (4, 11), **text)
    cv2.putText(legend, "  ".join(f"{CODES[kind]}={kind}" for kind in KINDS), (4, 25), **text)
    rows = [legend]
    chosen = worst_pairs(kinds, k)
    for pair in chosen:
        folder = out / "runs" / scheme / f"{pair:03d}"
        label = np.full((size + code_h, label_w, 3), 255, np.uint8)
        cv2.putText(label, f"pair {pair}", (4, size // 2 - 2), **text)
        cv2.putText(label, f"{sum(x is None for x in kinds[pair])}/{len(kinds[pair])} true", (4, size // 2 + 12), **text)
        tiles = [label]
        for i in range(frames):
            code = "key" if i in (0, frames - 1) else CODES[kinds[pair][i - 1]]
            strip = np.full((code_h, size, 3), 255, np.uint8)
            colour = (0, 0, 0) if code in ("key", "ok") else (200, 0, 0)
            cv2.putText(strip, code, (4, 11), **{**text, "color": colour})
            tiles.append(np.concatenate([_read_rgb(folder / f"frame_{i:05d}.png"), strip], axis=0))
        rows.append(np.concatenate(tiles, axis=1))
        rows.append(np.full((gap, rows[-1].shape[1], 3), 255, np.uint8))
    _write_rgb(path, np.concatenate(rows, axis=0))
    return chosen
