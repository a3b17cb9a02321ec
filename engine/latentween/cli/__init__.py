"""The `latentween` command. Each subcommand lives in its own module with `register` and `run`.

Importing this package never imports torch and changes no process state: client commands stay light,
and `main` sets the process up (latentween.runtime) before any command runs.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Optional

from latentween import __version__
from latentween.errors import LatentweenError
from latentween.runtime import configure_runtime

# subcommand -> module under latentween.cli
COMMANDS = {
    "morph": "latentween.cli.morph",
    "serve": "latentween.cli.serve",
    "submit": "latentween.cli.submit",
    "jobs": "latentween.cli.jobs",
    "attach": "latentween.cli.attach",
    "download": "latentween.cli.download",
    "cancel": "latentween.cli.cancel",
    "render": "latentween.cli.render",
    "eval": "latentween.cli.eval",
    "cache": "latentween.cli.cache",
    "sheet": "latentween.cli.sheet",
}
# Commands that may run the engine in this process: only they load torch, so only they pay for its
# flags. The daemon decides for itself (cli/serve.py).
ENGINE_COMMANDS = {"morph", "render", "eval"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latentween", description="In-between frames for two keyframes with a latent diffusion model.")
    parser.add_argument("--version", action="version", version=f"latentween {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        importlib.import_module(module).register(sub)
    return parser


class _StderrHandler(logging.Handler):
    """Engine warnings (e.g. no person found) as `warning: ...` lines on whatever stderr is now."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"{record.levelname.lower()}: {record.getMessage()}", file=sys.stderr)


def _log_to_stderr() -> None:
    logger = logging.getLogger("latentween")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler(logging.WARNING))
        logger.propagate = False


def _runs_engine_here(args: argparse.Namespace) -> bool:
    """Not when the work goes to a daemon (--server) or to Ray's actors (--ray), which set up their own."""
    return args.command in ENGINE_COMMANDS and not getattr(args, "server", None) and getattr(args, "ray", None) is None


def main(argv: Optional[list[str]] = None) -> int:
    configure_runtime(torch=False)  # before anything imports torch: OpenMP reads its wait policy once
    _log_to_stderr()
    parser = build_parser()
    args = parser.parse_args(argv)
    if _runs_engine_here(args):
        configure_runtime()
    try:
        return int(args.run(args) or 0)
    except LatentweenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished frames are kept; run the same command again to resume", file=sys.stderr)
        return 130
