"""`latentween jobs`: the jobs on a daemon, one line each (id, state, frames, keyframes)."""
from __future__ import annotations

import argparse

from latentween.cli.remote import add_daemon_arguments, client_from, daemon_errors

STATES = ("queued", "running", "awaiting-choice", "done", "failed", "cancelled")


def register(sub) -> None:
    parser = sub.add_parser("jobs", help="list the jobs on a daemon", description="List a daemon's jobs, oldest first.")
    add_daemon_arguments(parser)
    parser.add_argument("--state", choices=STATES, help="only jobs in this state")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    client = client_from(args)
    with daemon_errors():
        jobs = client.jobs(args.state)
    for job in jobs:
        inputs = " ".join(i.get("source", "?") for i in job.get("inputs") or [])
        frames = f"{len(job.get('frames') or [])}/{job['frame_count']}"
        error = f"  {job['error']}" if job.get("error") else ""
        print(f"{job['id']}  {job['state']:<15} {frames:>9} frames  {inputs}{error}")
    return 0
