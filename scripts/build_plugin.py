"""Build the Blender extension: dist/latentween-<version>.zip.

    python3 scripts/build_plugin.py [--out dist] [--validate]

plugin/ holds the add-on's own modules; the daemon client is engine/latentween/client.py, copied in
here so there is one source of it, and the project's LICENSE goes in beside them. The zip is written
with the standard library (files at its root, as Blender's own builder lays them out), so building
needs no Blender. `--validate` checks the result with Blender's extension tool, which ships inside the
`bpy` wheel (run it with .venv-blender/bin/python) or is named by $BLENDER_EXT.
"""
from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "plugin"
CLIENT = ROOT / "engine" / "latentween" / "client.py"
LICENSE = ROOT / "LICENSE"
STAMP = (1980, 1, 1, 0, 0, 0)  # the same sources give the same zip, byte for byte


def excluded(relative: str, patterns: list[str]) -> bool:
    """The manifest's paths_exclude_pattern, in the subset of gitignore syntax it uses."""
    parts = relative.split("/")
    for pattern in patterns:
        if pattern.endswith("/"):
            if pattern.strip("/") in parts[:-1]:
                return True
        elif fnmatch.fnmatch(parts[-1], pattern) or fnmatch.fnmatch(relative, pattern.lstrip("/")):
            return True
    return False


def contents() -> dict[str, Path]:
    """Name in the zip -> file on disk."""
    if (SOURCE / "client.py").exists():
        sys.exit("build_plugin: plugin/client.py must not exist; the client is copied from engine/latentween/client.py")
    manifest = tomllib.loads((SOURCE / "blender_manifest.toml").read_text())
    patterns = manifest.get("build", {}).get("paths_exclude_pattern", [])
    files = {}
    for path in sorted(SOURCE.rglob("*")):
        relative = path.relative_to(SOURCE).as_posix()
        if path.is_file() and not excluded(relative, patterns):
            files[relative] = path
    files["client.py"] = CLIENT
    files["LICENSE"] = LICENSE
    return files


def build(out: Path) -> Path:
    manifest = tomllib.loads((SOURCE / "blender_manifest.toml").read_text())
    out.mkdir(parents=True, exist_ok=True)
    package = out / f"{manifest['id']}-{manifest['version']}.zip"
    partial = package.with_name(package.name + ".part")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in sorted(contents().items()):
            info = zipfile.ZipInfo(name, STAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    os.replace(partial, package)
    return package


def find_builder() -> Path:
    """blender_ext.py inside the bpy wheel of this Python, or $BLENDER_EXT."""
    if os.environ.get("BLENDER_EXT"):
        return Path(os.environ["BLENDER_EXT"])
    spec = importlib.util.find_spec("bpy")  # finds the package without importing Blender
    if spec is None or not spec.submodule_search_locations:
        sys.exit("build_plugin: --validate needs the bpy wheel (.venv-blender/bin/python) or $BLENDER_EXT")
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if found:
            return found[-1]
    sys.exit("build_plugin: the bpy package has no scripts/addons_core/bl_pkg/cli/blender_ext.py")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="folder for the zip (default: dist)")
    parser.add_argument("--validate", action="store_true", help="check the zip with Blender's extension tool")
    args = parser.parse_args()
    package = build(args.out.resolve())
    if args.validate:
        subprocess.run([sys.executable, str(find_builder()), "validate", str(package)], check=True)
    print(package)
    return 0


if __name__ == "__main__":
    sys.exit(main())
