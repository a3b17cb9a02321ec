"""`latentween cache [info|clean]`: the work folders that videos, animations and pipes are made from.

They live in the user cache (latentween.workcache) so outputs stay single files and a finished job can
be written again in another format without running the model; `clean` frees the space.
"""
from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    parser = sub.add_parser("cache", help="show or remove the work folders in the user cache",
                            description="Work folders keep the frames behind video, animation and pipe outputs, so a "
                                        "re-run resumes and another format needs no new frames.")
    parser.add_argument("action", nargs="?", choices=("info", "clean"), default="info",
                        help="info: where and how big (default); clean: remove every work folder")
    parser.set_defaults(run=run)


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError


def run(args: argparse.Namespace) -> int:
    from latentween.workcache import clean, usage, work_root

    root = work_root()
    if args.action == "clean":
        folders, size = clean(root)
        print(f"removed {folders} work folders ({_size(size)}) from {root}", file=sys.stderr)
    else:
        folders, size = usage(root)
        print(f"{folders} work folders ({_size(size)}) in {root}")
    return 0
