"""`latentween download JOB --out DIR|FILE|-`: a finished daemon job's frames as a folder, video,
animation or pipe. Frames are fetched once into a work folder, so other formats need no transfer."""
from __future__ import annotations

import argparse
import sys

from latentween.cli.remote import (add_daemon_arguments, add_output_arguments, client_from, daemon_errors, deliver_job,
                                   output_from)
from latentween.errors import InputError


def register(sub) -> None:
    parser = sub.add_parser("download", help="write a finished job's frames from a daemon",
                            description="Write the frames of a job that is done on a daemon, as morph writes them.")
    parser.add_argument("job", metavar="JOB", help="the job's id (`latentween jobs` lists them)")
    add_daemon_arguments(parser)
    add_output_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.out:
        raise InputError("download needs --out DIR|FILE|-")
    output = output_from(args)
    client = client_from(args)
    with daemon_errors():
        job = client.job(args.job)
        if job["state"] != "done":
            raise InputError(f"job {args.job} is {job['state']}, not done: `latentween attach {args.job} --out ...` "
                             f"waits for it")
        print(deliver_job(client, job, args.out, output, args.work), file=sys.stderr)
    return 0
