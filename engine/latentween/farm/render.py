"""`latentween render ... --ray`: the transitions of a render run in parallel on a Ray cluster, and the
output is written here, in order, by the same writer and ordered sink as without Ray (media/), so the
file is the same.

Transitions are independent (each is a morph of two keyframes with the render's seed), so they are
the unit of work: one task per transition on a pool of FarmActors, the next transition going to the
first actor that is free. Reports are polled from the busy actors, feeding one progress bar. With
more than one actor, the actor that owns a transition runs its chunks across the whole pool, level
by level (farm/chunks.py), so a single transition uses several actors too.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from latentween.errors import LatentweenError
from latentween.farm import connect, default_actor_count, first_line
from latentween.farm.actors import start_actors, unwrap_error
from latentween.farm.files import receive
from latentween.morph import job_key
from latentween.reports import Frames, Progressed

POLL_S = 0.1


def finished_files(folder: Path) -> dict[str, bytes]:
    """What the driver's folder already holds of a transition, for the actor to resume from."""
    out = {}
    if not folder.is_dir():
        return out
    for path in folder.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            out[path.relative_to(folder).as_posix()] = path.read_bytes()
    return out


def deliver_on_ray(segments: Sequence, timeline: Sequence[Path], out: str, output, *, size, alpha: bool, deep: bool,
                   runtime, address: Optional[str], actors: Optional[int] = None, shared: bool = False,
                   restarts: int = 3, progress_for: Optional[Callable[[int], Callable[[dict], None]]] = None,
                   on_write: Optional[Callable[[int], None]] = None, stdout=None, threads: Optional[int] = None):
    """cli.delivery.deliver's contract (frames of `timeline` to `out` in order; the partial output removed on
    failure), with the segments run on the cluster at `address`."""
    from latentween.media.deliver import write_in_order
    from latentween.media.writers import claimed_stdout, open_writer

    if out == "-" and stdout is None:
        with claimed_stdout() as stream:
            return deliver_on_ray(segments, timeline, out, output, size=size, alpha=alpha, deep=deep, runtime=runtime,
                                  address=address, actors=actors, shared=shared, restarts=restarts,
                                  progress_for=progress_for, on_write=on_write, stdout=stream, threads=threads)
    ray = connect(address)
    if threads is None:
        import torch

        threads = torch.get_num_threads()  # what this process would compute with: the frames match it
    # Every actor is used even with fewer transitions: a transition's chunks spread over all of them.
    count = actors or default_actor_count(ray)
    names = [f"render-{os.getpid()}-actor-{i}" for i in range(count)]
    pool = start_actors(names, runtime.model_dump(), restarts=restarts, threads=threads,
                        gpus=ray.cluster_resources().get("GPU", 0) > 0)

    def produce(sink) -> None:
        watches = [sink.watch(s.folder, s.count, progress_for(n) if progress_for else None, s.key)
                   for n, s in enumerate(segments)]
        # Every transition goes out, finished ones too: whether a folder holds this very job is run_morph's
        # to say (its job key covers the model's recommended settings), and a finished one costs an actor
        # a model lookup and no step.
        for segment in segments:
            segment.folder.mkdir(parents=True, exist_ok=True)
        run_all(ray, pool, names, segments, watches, list(range(len(segments))), shared)

    try:
        return write_in_order(open_writer(out, size, output, alpha=alpha, deep=deep, stdout=stdout), timeline,
                              on_write, produce)
    finally:
        for actor in pool:
            ray.kill(actor)


def run_all(ray, pool, names, segments, watches, todo: list[int], shared: bool) -> None:
    # An actor takes work once it has started: on a cluster with fewer free slots than actors, the
    # transitions go to those that could be placed rather than wait on one that never will be.
    starting = {actor.info.remote(): a for a, actor in enumerate(pool)}
    idle: list[int] = []
    busy: dict = {}  # task ref -> (actor number, transition number, key)
    try:
        while todo or busy:
            if starting:
                started, _ = ray.wait(list(starting), num_returns=len(starting), timeout=0)
                for ref in started:
                    a = starting.pop(ref)
                    try:
                        ray.get(ref)
                        idle.append(a)
                    except ray.exceptions.RayError as exc:
                        if not (idle or busy or starting):
                            raise LatentweenError(f"no Ray actor could start: {first_line(exc)}") from None
            while todo and idle:
                a, number = idle.pop(0), todo.pop(0)
                segment = segments[number]
                key = job_key(segment.keyframes, segment.settings)
                payload = {"keyframes": segment.keyframes, "settings": segment.settings.model_dump(mode="json"),
                           "dir": str(Path(segment.folder).resolve()), "shared": shared, "key": key,
                           "files": {} if shared else finished_files(segment.folder),
                           "pool": pool if len(pool) > 1 else None,
                           "label": f"render transition {number + 1}/{len(segments)}"}
                ref = pool[a].run.options(name=f"render transition {number + 1}/{len(segments)}").remote(
                    "transition", key, payload)
                busy[ref] = (a, number, key)
            if not busy:
                time.sleep(POLL_S)
                continue
            ready, _ = ray.wait(list(busy), num_returns=1, timeout=POLL_S)
            for ref, (a, number, key) in list(busy.items()):
                if ref in ready:
                    continue
                try:
                    polled = ray.get(pool[a].poll.remote(key), timeout=10)
                except (ray.exceptions.RayError, TimeoutError):
                    continue  # the actor is being restarted; its task is re-run and reports again
                handle(polled["events"], segments[number], watches[number])
            for ref in ready:
                a, number, key = busy.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    error = unwrap_error(exc)
                    if isinstance(error, LatentweenError):
                        raise error from None
                    raise LatentweenError(f"transition {number + 1} failed on Ray actor {names[a]}: "
                                          f"{first_line(error)}") from None
                handle(result["events"], segments[number], watches[number])
                watches[number].finished()
                idle.append(a)
    except BaseException:
        for ref in busy:
            ray.cancel(ref)
        raise


def handle(events: list, segment, watch) -> None:
    for event in events:
        match event:
            case Progressed(progress):
                watch.progress(progress.event())
            case Frames(indices, files):
                receive(segment.folder, files)
                for index in indices:
                    watch.on_frame(index, segment.frame(index))
