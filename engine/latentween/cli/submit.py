"""`latentween submit A B [morph options] --server URL --wait --out DIR|FILE|-`: the same job as `morph`, run by a daemon.

Options are `morph`'s own, validated here by the same settings model before anything is sent; only
the options typed are sent, so the daemon fills the rest (its --model, a random seed) as morph would.
The same job already queued or running on the daemon is attached to instead of queued twice.
"""
from __future__ import annotations

import argparse
import sys

from latentween.cli.options import add_model_arguments, model_from_args
from latentween.cli.remote import (add_daemon_arguments, add_interrupt_argument, add_output_arguments, client_from,
                                   daemon_errors, deliver_job, output_from, running_copy, wait)
from latentween.settings import MorphSettings


def register(sub) -> None:
    parser = sub.add_parser("submit", help="make in-between frames on a latentween daemon (latentween serve)",
                            description="Send two keyframes and morph's job settings to a daemon; with --wait (or --out), "
                                        "wait for the frames and write them as morph does (folder, video, animation "
                                        "or pipe). The same job already on the daemon is attached to, not queued again.")
    parser.add_argument("keyframes", nargs=2, metavar="KEYFRAME",
                        help="image files on this machine (uploaded), or with --server-paths files on the daemon's machine")
    add_daemon_arguments(parser)
    parser.add_argument("--server-paths", action="store_true",
                        help="the keyframes are paths on the daemon's machine (under its --allow-root), or path@frame of a video")
    parser.add_argument("--wait", action="store_true", help="wait until the job is done (default: print its id and return)")
    add_interrupt_argument(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_output_arguments(parser)
    add_model_arguments(parser, MorphSettings, title="job settings")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    typed = model_from_args(MorphSettings, args).model_dump(mode="json", exclude_unset=True)
    output = output_from(args)
    client = client_from(args)
    with daemon_errors():
        job = running_copy(client, args.keyframes, typed, args.server_paths)
        if job is not None:
            print(f"attached to job {job['id']}, the same job already {job['state']} on {client.url}", file=sys.stderr)
        elif args.server_paths:
            job = client.submit_paths(args.keyframes, typed)
        else:
            job = client.submit(args.keyframes, typed)
        if not (args.wait or args.out):
            print(job["id"])
            print(f"queued job {job['id']} on {client.url}", file=sys.stderr)
            return 0
        job = wait(client, job, args.quiet, args.cancel_on_interrupt)
        if args.out:
            print(deliver_job(client, job, args.out, output, getattr(args, "work", None)), file=sys.stderr)
        else:
            print(job["id"])
    return 0
