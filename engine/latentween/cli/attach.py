"""`latentween attach JOB [--out DIR|FILE|-]`: wait for a daemon's job (again) and write its frames."""
from __future__ import annotations

import argparse
import sys

from latentween.cli.remote import (add_daemon_arguments, add_interrupt_argument, add_output_arguments, client_from,
                                   daemon_errors, deliver_job, output_from, wait)


def register(sub) -> None:
    parser = sub.add_parser("attach", help="wait for a job on a daemon, with progress, and write its frames",
                            description="Follow a job that `submit` (or anyone) queued on a daemon until it is done; "
                                        "with --out, write its frames as morph does.")
    parser.add_argument("job", metavar="JOB", help="the job's id (`latentween jobs` lists them)")
    add_daemon_arguments(parser)
    add_interrupt_argument(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_output_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    output = output_from(args)
    client = client_from(args)
    with daemon_errors():
        job = wait(client, client.job(args.job), args.quiet, args.cancel_on_interrupt)
        if args.out:
            print(deliver_job(client, job, args.out, output, args.work), file=sys.stderr)
        else:
            print(f"job {job['id']} is done: {job['frame_count']} frames", file=sys.stderr)
    return 0
