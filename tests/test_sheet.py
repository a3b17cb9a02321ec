"""`latentween sheet`: frames side by side at one height, keyframes framed in orange (issue 19, point 5)."""
import json

import numpy as np
from PIL import Image

from conftest import disk_image, write_png
from latentween.cli import main
from latentween.cli.sheet import GAP, KEY_COLOUR, LABEL_HEIGHT


def test_a_sheet_puts_every_frame_in_a_row_and_frames_only_the_keyframes(tmp_path, capsys):
    frames = [write_png(tmp_path / f"frame_{i:05d}.png", disk_image((20 + 8 * i, 32), (200, 30, 30))) for i in range(3)]
    (tmp_path / "manifest.json").write_text(json.dumps({"frames": [
        {"index": i, "file": f.name, "fraction": i / 2, "source": "keyframe" if i in (0, 2) else "generated"}
        for i, f in enumerate(frames)]}))
    assert main(["sheet", str(tmp_path), "--height", "32", "--out", str(tmp_path / "s.png")]) == 0
    sheet = np.asarray(Image.open(tmp_path / "s.png").convert("RGB"))
    assert sheet.shape == (GAP + 32 + LABEL_HEIGHT + GAP, GAP + 3 * (32 + GAP), 3)
    corners = [tuple(sheet[GAP, GAP + c * (32 + GAP)]) for c in range(3)]
    assert corners[0] == corners[2] == KEY_COLOUR and corners[1] != KEY_COLOUR
    assert "wrote a sheet of 3 frames" in capsys.readouterr().err


def test_a_folder_without_frames_is_one_line(tmp_path, capsys):
    assert main(["sheet", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: no frame_*.png files in {str(tmp_path)!r}"
