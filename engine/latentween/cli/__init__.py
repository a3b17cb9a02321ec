"""The `latentween` command. Each subcommand lives in its own module with `register` and `run`.

Importing this package never imports torch: client commands stay light.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional

from latentween import __version__
from latentween.errors import LatentweenError

# subcommand -> module under latentween.cli
COMMANDS = {
    "morph": "latentween.cli.morph",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latentween", description="In-between frames for two keyframes with a latent diffusion model.")
    parser.add_argument("--version", action="version", version=f"latentween {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except LatentweenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished frames are kept; run the same command again to resume", file=sys.stderr)
        return 130
