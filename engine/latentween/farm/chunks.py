"""One transition split across actors the way the method splits it (docs/farm.md, "The split").

The frames of a plan level depend only on earlier levels, and the level's fixed chunks
(plan.level_chunks, docs/determinism.md) give the same bytes wherever they run. So the actor that
owns a transition (it runs run_morph: the folder, resume, the manifest) hands run_morph a `frames`
source that sends each chunk to the pool's actors as soon as its parents are finished: the parents'
latents go through Ray's object store as the task's arguments (so Ray fetches them to the chunk's
node before it starts), and the chunk's frames come back as the output's PNG bytes with their latents.

Faults are Ray's: a chunk task on an actor that dies is re-run by Ray on the restarted actor
(`max_task_retries` of the actor class, farm/actors.py); a chunk always runs whole from its
parents, so its frames are those of an uninterrupted run. If the owner dies, Ray re-runs the whole
transition task, which resumes from its folder and sends out only the chunks still to make.

What is not split (the transition's chunks all run in the owner, as without Ray): DID schemes (their
parents are partially denoised trajectories), a LoRA (it is applied to the shared model for the
length of a job, while an actor's chunk thread serves other transitions), and a person choosing
candidates (the choice travels through the owner's channel).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Iterator, Optional

import ray

from latentween.errors import Cancelled
from latentween.farm.actors import unwrap_error
from latentween.morph import Transition, condition_transition, frame_png, job_key, load_transition, local_frames
from latentween.progress import Progress

WAIT_S = 0.1
KEPT_TRANSITIONS = 2  # set-ups an actor keeps: a render's transitions in flight at once, roughly


def splittable(settings) -> bool:
    """Whether a transition's chunks may run on other actors (module docstring)."""
    return not settings.scheme.startswith("did") and not settings.lora and settings.choose != "manual"


class ChunkSource:
    """run_morph's `frames` on a pool of FarmActors (round robin, each with one chunk thread)."""

    def __init__(self, actors: list, label: str = "transition"):
        self.actors, self.label, self.turn = list(actors), label, 0

    def __call__(self, t: Transition, request, done: dict, callback: Optional[Callable] = None,
                 should_cancel: Optional[Callable[[], bool]] = None) -> Iterator:
        if not splittable(t.settings):
            return local_frames(t, request, done, callback=callback, should_cancel=should_cancel)
        return self._run(t, request, done, callback, should_cancel)

    def _run(self, t: Transition, request, done, callback, should_cancel):
        # 1. The plan and its chunks: pure, no model; the job itself travels once through the object store
        schedule = t.pipe.schedule(request, done)
        last = len(request.fractions) - 1
        job = ray.put({"keyframes": list(t.keyframes), "settings": t.settings.model_dump(mode="json"),
                       "key": job_key(t.keyframes, t.settings)})
        latents = {i: ray.put(z.cpu()) for i, z in done.items()}
        waiting = [(lv, n) for lv, numbers in enumerate(schedule.todo, start=1) for n in numbers]
        running: dict = {}
        progress = Progress(done=0, total=schedule.total, stage="denoising", levels=len(schedule.plan))
        try:
            while waiting or running:
                # 2. Every chunk whose parents are finished goes out, with their latents as arguments
                for lv, n in list(waiting):
                    chunk = schedule.chunks[lv - 1][n]
                    parents = {i for row in chunk for i in (row.frame.left, row.frame.right)} - {0, last}
                    if parents <= set(latents):
                        waiting.remove((lv, n))
                        known = sorted(parents | {row.frame.index for row in chunk if row.frame.index in latents})
                        running[self._submit(job, lv, n, known, request.takes, [latents[i] for i in known])] = (lv, n)
                # 3. Finished chunks: their frames to run_morph, their latents into the object store
                ready, _ = ray.wait(list(running), num_returns=1, timeout=WAIT_S)
                if should_cancel is not None and should_cancel():
                    raise Cancelled()
                for ref in ready:
                    lv, n = running.pop(ref)
                    out = self._result(ref, lv, n)
                    t.pipe.counter.calls += out["calls"]
                    t.pipe.counter.rows += out["rows"]
                    chunk = schedule.chunks[lv - 1][n]
                    progress.level, progress.done = lv, progress.done + (chunk[0].start + 1) * len(chunk)
                    if callback is not None and request.scheme != "interpolate-only":
                        callback(progress.event())
                    for result in out["frames"]:
                        latents[result.index] = ray.put(result.latent)
                        yield result
        finally:
            for ref in running:  # cancelled, failed, or run_morph stopped: the rest is not wanted
                ray.cancel(ref)

    def _submit(self, job, level: int, number: int, known: list[int], takes: dict, refs: list):
        actor = self.actors[self.turn % len(self.actors)]
        self.turn += 1
        return actor.run_chunk.options(name=f"{self.label} chunk {level}/{number}").remote(
            job, level, number, known, takes, *refs)

    @staticmethod
    def _result(ref, level: int, number: int) -> dict:
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as exc:
            error = unwrap_error(exc)
            if error is not exc:
                raise error from None
            raise


def run_chunk(actor, job: dict, level: int, number: int, known: list[int], takes: dict, latents: list) -> dict:
    """On a FarmActor: one chunk of a transition from its parents' latents; its frames as PNG bytes."""
    from dataclasses import replace

    from latentween.pipeline import first_candidate

    t = _transition(actor, job)
    before = (t.pipe.counter.calls, t.pipe.counter.rows)
    results = t.pipe.run_chunk(t.work, replace(t.request, takes=takes), level, number, dict(zip(known, latents)),
                               chooser=t.cond.chooser or first_candidate)
    name = ray.get_runtime_context().get_actor_name()
    for result in results:
        result.png, result.image = frame_png(result, t.prepared), None
        result.info["actor"] = name
    return {"frames": results, "calls": t.pipe.counter.calls - before[0], "rows": t.pipe.counter.rows - before[1]}


def _transition(actor, job: dict) -> Transition:
    """The transition's set-up on this actor, made as run_morph makes it (the same conditioning,
    recomputed here: inverted prompts come from the node's embedding cache the owner filled) and kept
    for its next chunks."""
    from latentween.settings import MorphSettings

    kept: OrderedDict = actor.__dict__.setdefault("transitions", OrderedDict())
    if job["key"] not in kept:
        settings = MorphSettings.model_validate(job["settings"])
        t = load_transition(job["keyframes"], settings, actor.runtime, actor.manager)
        condition_transition(t, actor.manager)
        kept[job["key"]] = t
        while len(kept) > KEPT_TRANSITIONS:
            kept.popitem(last=False)
    kept.move_to_end(job["key"])
    return kept[job["key"]]
