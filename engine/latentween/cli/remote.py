"""What the daemon commands share (submit, attach, download, morph --server): the daemon's address,
waiting with Ctrl-C handled, finding a running copy of a job, and writing a job's frames to any
output `morph` writes (folder, video, animation, pipe).

No torch here: frames come from the daemon as PNG files and are written by latentween.media.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, Sequence

from latentween.cli.options import add_model_arguments, model_from_args
from latentween.settings import MorphSettings, OutputSettings

WAITING_STATES = ("queued", "running", "awaiting-choice")


def add_daemon_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", metavar="URL", help="daemon address (default: $LATENTWEEN_SERVER or http://127.0.0.1:8642)")
    parser.add_argument("--token", help="the daemon's bearer token (default: $LATENTWEEN_TOKEN)")


def add_output_arguments(parser: argparse.ArgumentParser, work: bool = True) -> None:
    parser.add_argument("--out", metavar="DIR|FILE|-",
                        help="write the frames here: a folder (frames and manifest.json), a video (.mp4 .m4v .mov .mkv "
                             ".webm), an animation (.gif .webp) or - (raw frames on stdout)")
    if work:
        parser.add_argument("--work", metavar="DIR", help="with a video, animation or pipe --out: where the downloaded "
                                                          "frames are kept (default: in the user cache)")
    add_model_arguments(parser, OutputSettings, title="output")


def add_interrupt_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cancel-on-interrupt", action="store_true",
                        help="Ctrl-C while waiting cancels the job (default: ask on a terminal, else leave it running)")


@contextmanager
def daemon_errors():
    """A daemon's refusal, or a daemon that is not there, as the CLI's one-line error."""
    from latentween.client import DaemonError
    from latentween.errors import LatentweenError

    try:
        yield
    except DaemonError as exc:
        raise LatentweenError(str(exc)) from None


def client_from(args: argparse.Namespace):
    from latentween.client import Client
    from latentween.errors import InputError

    try:
        return Client(args.server, args.token)
    except ValueError as exc:
        raise InputError(f"--server: {exc}") from None


def wait(client, job: dict, quiet: bool, cancel_on_interrupt: bool) -> dict:
    """Poll until the job is done, with a frame-counting progress bar. On Ctrl-C: cancel the job if
    asked to (or if the user says so at the prompt), else say how to come back to it; exit 130."""
    from latentween.progress import ProgressBar

    bar = ProgressBar(f"job {job['id']}", enabled=False if quiet else None, unit="frame")
    told = set()

    def update(current: dict) -> None:
        progress = current.get("progress") or {}
        bar({"done": len(current.get("frames") or []), "total": current["frame_count"],
             "stage": progress.get("stage"), "steps": f"{progress['done']}/{progress['total']}" if progress.get("total") else None})
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
        _interrupted(client, job["id"], cancel_on_interrupt)
        raise SystemExit(130)
    finally:
        bar.close()


def _interrupted(client, job_id: str, cancel: bool) -> None:
    if not cancel and sys.stdin is not None and sys.stdin.isatty() and sys.stderr.isatty():
        try:
            cancel = input(f"\ncancel job {job_id} on the daemon? [y/N] ").strip().lower() in ("y", "yes")
        except (KeyboardInterrupt, EOFError):
            cancel = False
    if cancel:
        client.cancel(job_id)
        print(f"cancelled job {job_id}; its finished frames stay on the daemon", file=sys.stderr)
    else:
        print(f"stopped waiting: job {job_id} goes on on the daemon; `latentween attach {job_id}` waits for it again, "
              f"`latentween cancel {job_id}` stops it", file=sys.stderr)


def running_copy(client, keyframes: Sequence[str], typed: dict, server_paths: bool) -> Optional[dict]:
    """A queued or running job on the daemon with these keyframes and settings, to attach to instead of
    queueing a duplicate. Settings the user did not type are compared at their defaults, except the
    seed and the model, which the daemon fills (a random seed, its --model)."""
    if server_paths:
        identities = [("source", str(k)) for k in keyframes]
    else:
        try:
            identities = [("sha256", hashlib.sha256(Path(k).read_bytes()).hexdigest()) for k in keyframes]
        except OSError:
            return None  # submit reports the unreadable file
    wanted = MorphSettings(**typed).model_dump(mode="json")
    ignore = {name for name in ("seed", "model") if name not in typed}
    waiting = [job for state in WAITING_STATES for job in client.jobs(state)]  # never cut by the list's limit
    for job in waiting:
        if len(job.get("inputs") or []) != 2:
            continue
        if any(info.get(field) != value for info, (field, value) in zip(job["inputs"], identities)):
            continue
        theirs = job.get("settings") or {}
        if all(theirs.get(k) == v for k, v in wanted.items() if k not in ignore):
            return job
    return None


def is_plain_folder(out: str, output: OutputSettings) -> bool:
    """A folder with the engine's naming and no holds: the daemon's files are copied as they are."""
    from latentween.media.codecs import output_kind

    default = OutputSettings()
    return output_kind(out) == "folder" and (output.pattern, output.start_number, output.hold_start,
                                             output.hold_end) == (default.pattern, default.start_number, 0, 0)


def deliver_job(client, job: dict, out: str, output: OutputSettings, work: Optional[str] = None) -> str:
    """Write a done job to `out` like `morph` would; returns the line to print."""
    from latentween.easing import with_holds
    from latentween.atomic import write_atomic
    from latentween.media.frames import read_frame
    from latentween.media.writers import claimed_stdout, open_writer
    from latentween.workcache import work_root

    seed = (job.get("settings") or {}).get("seed")
    if is_plain_folder(out, output):
        if output.codec or output.crf is not None or output.pix_fmt:
            from latentween.errors import InputError

            raise InputError("--codec, --crf and --pix-fmt apply to video files; --out names a folder")
        client.download(job["id"], out)
        return f"wrote {job['frame_count']} frames to {out} (seed {seed})"
    folder = Path(work) if work else work_root() / "daemon" / hashlib.sha256(
        f"{client.url} {job['id']}".encode()).hexdigest()[:20]
    folder.mkdir(parents=True, exist_ok=True)
    manifest = client.manifest(job["id"])
    frames = []
    for entry in manifest["frames"]:
        name = entry.get("file")
        if not name or Path(name).name != name:
            continue
        path = folder / name
        if not path.is_file():  # kept from an earlier download: another format costs no transfer
            write_atomic(path, client.frame(job["id"], entry["index"]))
        frames.append(path)
    first = read_frame(frames[0])
    size, alpha, deep = (first.shape[1], first.shape[0]), first.shape[2] == 4, first.dtype.itemsize == 2
    timeline = with_holds(frames, output.hold_start, output.hold_end)

    def write(stdout=None):
        writer = open_writer(out, size, output, alpha=alpha, deep=deep, stdout=stdout)
        try:
            for frame in timeline:
                writer.write(frame)
            writer.close()
        except BaseException:
            writer.abort()
            raise

    if out == "-":
        with claimed_stdout() as stream:
            write(stream)
    else:
        write()
    from latentween.media.deliver import pipe_hint

    hint = pipe_hint(size, output) if out == "-" else ""
    return f"wrote {len(timeline)} frames to {'stdout' if out == '-' else out} (seed {seed}); frames kept in {folder}{hint}"


def output_from(args: argparse.Namespace) -> OutputSettings:
    output = model_from_args(OutputSettings, args)
    if args.out:
        from latentween.media.codecs import output_kind

        output_kind(args.out)  # an unsupported suffix is refused before anything is sent
    return output
