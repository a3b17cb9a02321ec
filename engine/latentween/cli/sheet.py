"""`latentween sheet DIR [--out sheet.png]`: a contact sheet of a morph's frames, side by side.

Each frame is scaled to one height and labelled with its fraction (from DIR/manifest.json when there
is one); keyframes get an orange frame and the label "key", so a sheet shows at a glance what was
given and what was made. Pillow only: no torch, no model.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from latentween.errors import InputError

KEY_COLOUR = (255, 140, 0)
LABEL_HEIGHT = 14
GAP = 4


def register(sub) -> None:
    parser = sub.add_parser("sheet", help="a contact sheet (PNG) of a folder of frames, keyframes marked",
                            description="Put a morph's frames side by side in one PNG, labelled with their fractions; "
                                        "keyframes are framed in orange.")
    parser.add_argument("folder", metavar="DIR", help="a folder written by morph, submit or download (frame_*.png)")
    parser.add_argument("--out", metavar="FILE", help="the PNG to write (default: DIR/sheet.png)")
    parser.add_argument("--height", type=int, default=128, help="height of each frame in pixels (default: 128)")
    parser.add_argument("--columns", type=int, default=0, help="frames per row (default: all in one row)")
    parser.set_defaults(run=run)


def frames_of(folder: Path) -> list[tuple[Path, str, bool]]:
    """(file, label, is keyframe) in order: from the manifest, else the frame files by name."""
    from latentween.outputs import OutputFolder

    output = OutputFolder(folder)
    manifest = output.manifest()
    if (manifest is not None and "frames" in manifest.model_fields_set
            and all(e.file is not None and e.fraction is not None for e in manifest.frames)):
        return [(folder / e.file, f"{e.fraction:.3g}", e.source == "keyframe") for e in manifest.frames]
    files = output.frame_files()
    return [(f, str(i), i in (0, len(files) - 1)) for i, f in enumerate(files)]


def contact_sheet(frames: list[tuple[Path, str, bool]], height: int, columns: int):
    from PIL import Image, ImageDraw, ImageFont

    thumbs = []
    for path, label, key in frames:
        try:
            with Image.open(path) as image:
                image = image.convert("RGBA")
                image.load()
        except OSError as exc:
            raise InputError(f"frame {str(path)!r} is missing or unreadable") from exc
        width = max(1, round(image.width * height / image.height))
        flat = Image.new("RGB", image.size, (255, 255, 255))
        flat.paste(image, mask=image.getchannel("A"))
        thumbs.append((flat.resize((width, height), Image.Resampling.LANCZOS), label, key))
    columns = columns if columns > 0 else len(thumbs)
    rows = [thumbs[i:i + columns] for i in range(0, len(thumbs), columns)]
    cell_w = max(t[0].width for t in thumbs)
    sheet = Image.new("RGB", (GAP + columns * (cell_w + GAP), GAP + len(rows) * (height + LABEL_HEIGHT + GAP)),
                      (40, 40, 40))
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default()
    for r, row in enumerate(rows):
        for c, (thumb, label, key) in enumerate(row):
            x, y = GAP + c * (cell_w + GAP), GAP + r * (height + LABEL_HEIGHT + GAP)
            sheet.paste(thumb, (x, y))
            if key:
                draw.rectangle([x, y, x + thumb.width - 1, y + height - 1], outline=KEY_COLOUR, width=3)
            text = f"key {label}" if key else label
            draw.text((x + 2, y + height + 1), text, fill=KEY_COLOUR if key else (230, 230, 230), font=font)
    return sheet


def run(args: argparse.Namespace) -> int:
    from latentween.atomic import write_atomic

    folder = Path(args.folder)
    if not folder.is_dir():
        raise InputError(f"{args.folder!r} is not a folder of frames")
    if not 8 <= args.height <= 2048:
        raise InputError(f"--height must be within 8..2048, got {args.height}")
    frames = frames_of(folder)
    if not frames:
        raise InputError(f"no frame_*.png files in {args.folder!r}")
    out = Path(args.out) if args.out else folder / "sheet.png"
    buffer = io.BytesIO()
    contact_sheet(frames, args.height, args.columns).save(buffer, format="PNG")
    write_atomic(out, buffer.getvalue())
    print(f"wrote a sheet of {len(frames)} frames to {out}", file=sys.stderr)
    return 0
