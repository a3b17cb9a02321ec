"""Build the Blender extension: dist/latentween-<version>.zip.

    .venv-blender/bin/python scripts/build_plugin.py [--out dist]

plugin/ holds the add-on's own modules; the daemon client is engine/latentween/client.py, copied in
here so there is one source of it. Blender's own extension builder (it ships inside the `bpy` wheel
and needs no Blender binary) packs and validates the result, so the zip is what Blender expects.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "plugin"
CLIENT = ROOT / "engine" / "latentween" / "client.py"


def find_builder() -> Path:
    """blender_ext.py inside the bpy wheel of this Python, or $BLENDER_EXT."""
    if os.environ.get("BLENDER_EXT"):
        return Path(os.environ["BLENDER_EXT"])
    spec = importlib.util.find_spec("bpy")  # finds the package without importing Blender
    if spec is None or not spec.submodule_search_locations:
        sys.exit("build_plugin: no bpy here; run it with .venv-blender/bin/python (make plugin) or set BLENDER_EXT")
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if found:
            return found[-1]
    sys.exit("build_plugin: the bpy package has no scripts/addons_core/bl_pkg/cli/blender_ext.py")


def stage(folder: Path) -> Path:
    """plugin/ plus client.py in a clean folder."""
    if (SOURCE / "client.py").exists():
        sys.exit("build_plugin: plugin/client.py must not exist; the client is copied from engine/latentween/client.py")
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(SOURCE, folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(CLIENT, folder / "client.py")
    return folder


def build(out: Path, builder: Path) -> Path:
    staged = stage(ROOT / "build" / "plugin" / "latentween")
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.glob("latentween-*.zip"))
    run = [sys.executable, str(builder)]
    subprocess.run([*run, "build", "--source-dir", str(staged), "--output-dir", str(out)], check=True)
    made = sorted(set(out.glob("latentween-*.zip")) - before) or sorted(out.glob("latentween-*.zip"),
                                                                         key=lambda p: p.stat().st_mtime)
    package = made[-1]
    subprocess.run([*run, "validate", str(package)], check=True)
    return package


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="folder for the zip (default: dist)")
    args = parser.parse_args()
    print(build(args.out.resolve(), find_builder()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
