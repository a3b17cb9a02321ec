"""Write docs/gallery.md: real morphs as contact sheets, and how long a frame takes (issue 19, point 5).

    python scripts/gallery.py [--out docs]

1. The shipped toy model morphs samples/toy_a.png into samples/toy_b.png (9 frames, seed 1), with
   the default alignment and with `--align none` (the paper's method); `latentween sheet` draws each.
2. Time per frame: UNet evaluations per in-between frame, measured in the toy run's manifest and
   planned for an SD-1.5 model (the plan is exact: benchmarks/engine_speed.py checks it against the
   SD-1.5-architecture benchmark's manifest), times published seconds per sampler step of SD 1.5 at
   512x512 on some GPU classes. An estimate until measured on a GPU, and labelled so.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "engine"))
sys.path.insert(0, str(ROOT / "benchmarks"))

# Seconds per sampler step of SD 1.5, 512x512, fp16, with classifier-free guidance (2 UNet rows per
# step), as published; each is one source's figure, not ours.
GPU_STEP_SECONDS = [
    ("NVIDIA RTX 3060 (12 GB)", 8.7 / 50, "8.7 s for 50 steps (restack.io summary of community benchmarks)"),
    ("NVIDIA RTX 3090", 0.10, "'over 100 ms per step on an RTX 3090 means misconfigured' (gigagpu.com)"),
    ("NVIDIA A100", 5.0 / 50, "about 5 s per 512x512 image at 50 steps (Lambda Labs inference benchmark, 2022)"),
]


def latentween(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "latentween", *args], check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def toy_sheets(out: Path, work: Path) -> list[tuple[str, str, dict]]:
    rows = []
    for name, extra in (("toy-aligned", []), ("toy-paper", ["--align", "none"])):
        folder = work / name
        latentween("morph", str(ROOT / "samples/toy_a.png"), str(ROOT / "samples/toy_b.png"), "--model", "toy",
                   "--frames", "9", "--seed", "1", "--out", str(folder), "--quiet", *extra)
        latentween("sheet", str(folder), "--height", "96", "--out", str(out / "gallery" / f"{name}.png"))
        rows.append((name, " ".join(extra) or "(defaults)", json.loads((folder / "manifest.json").read_text())))
    return rows


def main() -> None:
    from engine_speed import planned_evaluations

    from latentween.plan import reference_candidates

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs"))
    args = parser.parse_args()
    out = Path(args.out)
    (out / "gallery").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = toy_sheets(out, Path(tmp))
    lines = ["# Gallery", "", "Made by `python scripts/gallery.py` with the shipped toy model (no network, no GPU). "
             "Each sheet shows the 9 frames side by side; keyframes are framed in orange and labelled `key`, the "
             "others with their position in the morph. Drawn by `latentween sheet DIR`.", ""]
    for name, flags, manifest in rows:
        seconds = manifest["timings"]["generate_s"]
        lines += [f"## `latentween morph samples/toy_a.png samples/toy_b.png --model toy --frames 9 --seed 1 {flags}`",
                  "", f"![{name}](gallery/{name}.png)", "",
                  f"{manifest['unet']['evaluations_per_frame']:.1f} UNet evaluations per in-between frame; generated in "
                  f"{seconds:.1f} s on this machine's CPU (2 cores, shared).", ""]
    toy_rows = rows[0][2]["unet"]["evaluations_per_frame"]
    sd = [("SD 1.5 defaults (dpmpp-2m 40 steps, 8..3 candidates pruned at 30%, guidance)", None),
          ("SD 1.5 `--candidates 1`", planned_evaluations(17, 40, 0.30, 0.55, lambda level: 1, True)),
          ("SD 1.5 `--preset draft` (8 steps, one candidate)", planned_evaluations(17, 8, 0.30, 0.55, lambda level: 1, True)),
          ("the paper's settings (DDIM 200 steps, 8..3 candidates)",
           planned_evaluations(17, 200, 0.30, 0.55, reference_candidates, True))]
    sd[0] = (sd[0][0], 77.1)  # measured in the manifest with early pruning (README, Speed); the plan has no pruning
    lines += ["## How long a frame takes: an estimate until measured on a GPU", "",
              "Seconds per in-between frame = UNet evaluations per frame / 2 x published seconds per SD 1.5 "
              "sampler step at 512x512 with guidance (2 evaluations per step). Evaluations come from the manifests "
              "(measured) and the plan (exact for unpruned runs); the step times are other people's figures, "
              "listed below, not measured here. **Not measured on a GPU yet.**", "",
              "| settings, 17 frames | evaluations/frame | " + " | ".join(g[0] for g in GPU_STEP_SECONDS) + " |",
              "|---|---|" + "---|" * len(GPU_STEP_SECONDS)]
    for name, evaluations in sd:
        lines.append(f"| {name} | {evaluations:.1f} | " +
                     " | ".join(f"~{evaluations / 2 * step:.1f} s" for _, step, _ in GPU_STEP_SECONDS) + " |")
    lines += ["", f"The toy model needs {toy_rows:.1f} evaluations per frame, of a UNet far smaller than SD's.", "",
              "Step times used:", ""] + [f"- {gpu}: {step:.3f} s/step; {source}" for gpu, step, source in GPU_STEP_SECONDS]
    (out / "gallery.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'gallery.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
