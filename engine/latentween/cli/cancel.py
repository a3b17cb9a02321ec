"""`latentween cancel JOB`: stop a daemon's job at its next denoising step; finished frames stay."""
from __future__ import annotations

import argparse
import sys

from latentween.cli.remote import add_daemon_arguments, client_from, daemon_errors


def register(sub) -> None:
    parser = sub.add_parser("cancel", help="cancel a job on a daemon",
                            description="Stop a queued or running job; the frames it finished stay on the daemon.")
    parser.add_argument("job", metavar="JOB", help="the job's id (`latentween jobs` lists them)")
    add_daemon_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    client = client_from(args)
    with daemon_errors():
        job = client.cancel(args.job)
    done = "cancelled" if job["state"] == "cancelled" else "stops at its next step"
    print(f"job {job['id']} {done}", file=sys.stderr)
    return 0
