"""What a job will need, checked when it is submitted (issue 19, point 2).

A job that ranks candidates with CLIP whose weights are neither on this machine nor downloadable
would be accepted and fail on the worker only after its model has loaded. Checked here instead,
after the inputs (so their own errors come first), with the settings the job will run with (the
model folder's recommendations filled in, as run_morph does): it is refused at once with the line
`latentween morph` prints for it. Only offline look-ups: when the hub is reachable, the worker
downloads what is missing as before. A model that is missing or broken is left to the worker,
which fails such a job at once without running anything (the daemon's tests rely on that).
"""
from __future__ import annotations

from pathlib import Path

from latentween.errors import ModelError
from latentween.server.errors import Unprocessable
from latentween.settings import MorphSettings


def check_available(settings: MorphSettings) -> None:
    """Raise Unprocessable (422, one line) if the job needs CLIP weights this daemon cannot get."""
    try:
        _check(settings)
    except ModelError as exc:
        raise Unprocessable(str(exc)) from None


def _check(settings: MorphSettings) -> None:
    from latentween.models import hub_reachable, resolve_model
    from latentween.morph import effective_settings

    try:
        source = resolve_model(settings.model)
        effective = effective_settings(settings)
    except ModelError:
        return  # a broken model folder or file: the worker fails the job with its reason, as before
    needs_clip = (effective.candidates != 1 and effective.choose == "clip"
                  and not Path(effective.clip_model).expanduser().is_dir())
    if not needs_clip or hub_reachable():
        return
    if source.kind == "hub" and not _cached(source.location, "model_index.json"):
        return  # no model either: the worker fails the job at once with that reason, nothing runs
    from latentween.ranking import _check_clip_weights

    name, _, pretrained = effective.clip_model.partition(":")
    _check_clip_weights(name, pretrained or None, effective.clip_model)


def _cached(repo: str, filename: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo, filename), str)
