"""`latentween submit A B [morph options] --server URL --wait --out DIR`: the same job as `morph`, run by a daemon.

Options are `morph`'s own, validated here by the same settings model before anything is sent; only
the options typed are sent, so the daemon fills the rest (its --model, a random seed) as morph would.
"""
from __future__ import annotations

import argparse
import sys

from latentween.cli.options import add_model_arguments, model_from_args
from latentween.errors import LatentweenError
from latentween.settings import MorphSettings


def register(sub) -> None:
    parser = sub.add_parser("submit", help="make in-between frames on a latentween daemon (latentween serve)",
                            description="Send two keyframes and morph's job settings to a daemon; with --wait (or --out), "
                                        "wait for the frames and write DIR/frame_00000.png ... and DIR/manifest.json.")
    parser.add_argument("keyframes", nargs=2, metavar="KEYFRAME",
                        help="image files on this machine (uploaded), or with --server-paths files on the daemon's machine")
    parser.add_argument("--server", metavar="URL", help="daemon address (default: $LATENTWEEN_SERVER or http://127.0.0.1:8642)")
    parser.add_argument("--token", help="the daemon's bearer token (default: $LATENTWEEN_TOKEN)")
    parser.add_argument("--server-paths", action="store_true",
                        help="the keyframes are paths on the daemon's machine (under its --allow-root), or path@frame of a video")
    parser.add_argument("--wait", action="store_true", help="wait until the job is done (default: print its id and return)")
    parser.add_argument("--out", metavar="DIR", help="write the frames and manifest.json here (implies --wait)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_arguments(parser, MorphSettings, title="job settings")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from latentween.client import Client, DaemonError

    settings = model_from_args(MorphSettings, args).model_dump(mode="json", exclude_unset=True)
    client = Client(args.server, args.token)
    try:
        if args.server_paths:
            job = client.submit_paths(args.keyframes, settings)
        else:
            job = client.submit(args.keyframes, settings)
        if not (args.wait or args.out):
            print(job["id"])
            print(f"queued job {job['id']} on {client.url}", file=sys.stderr)
            return 0
        job = _wait(client, job, args.quiet)
        if args.out:
            client.download(job["id"], args.out)
            print(f"wrote {job['frame_count']} frames to {args.out} (seed {job['settings']['seed']})", file=sys.stderr)
        else:
            print(job["id"])
        return 0
    except DaemonError as exc:
        raise LatentweenError(str(exc)) from None


def _wait(client, job: dict, quiet: bool) -> dict:
    from latentween.progress import ProgressBar

    bar = ProgressBar(f"job {job['id']}", enabled=False if quiet else None)
    told = set()

    def update(current: dict) -> None:
        bar(current["progress"])
        awaiting = current.get("awaiting")
        if awaiting and awaiting["frame"] not in told:
            told.add(awaiting["frame"])
            print(f"job {current['id']} waits for a choice among {awaiting['candidates']} candidates of frame "
                  f"{awaiting['frame']}: GET {client.url}/v1/jobs/{current['id']}/candidates, then POST .../choose",
                  file=sys.stderr)

    try:
        return client.wait(job["id"], on_update=update)
    except KeyboardInterrupt:
        bar.close()
        print(f"stopped waiting: job {job['id']} goes on on the daemon (POST {client.url}/v1/jobs/{job['id']}/cancel "
              f"stops it)", file=sys.stderr)
        raise SystemExit(130)
    finally:
        bar.close()
