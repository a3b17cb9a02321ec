"""What a job will need, checked when it is submitted (issue 19, point 2).

A job whose model or CLIP ranking weights are neither on this machine nor downloadable would be
accepted and fail on the worker. Checked here instead, after the inputs (so their own errors come
first), with the settings the job will run with (the model folder's recommendations filled in, as
run_morph does): it is refused at once with the line `latentween morph` prints for it. Only cheap,
offline look-ups (a path, the Hugging Face cache): when the hub is reachable, the worker downloads
what is missing as before, and a model that is present but broken inside is the worker's to find.
"""
from __future__ import annotations

from pathlib import Path

from latentween.errors import ModelError
from latentween.server.errors import Unprocessable
from latentween.settings import MorphSettings


def check_available(settings: MorphSettings) -> None:
    """Raise Unprocessable (422, one line) if the job needs a model or CLIP weights this daemon cannot get."""
    try:
        _check(settings)
    except ModelError as exc:
        raise Unprocessable(str(exc)) from None


def _check(settings: MorphSettings) -> None:
    from latentween.hub import check_hub_model, hub_reachable
    from latentween.models import resolve_model
    from latentween.morph import effective_settings
    from latentween.ranking import check_clip_weights

    source = resolve_model(settings.model)  # a path that does not exist, or is not a model: the loader's line
    effective = effective_settings(settings)
    needs_clip = (effective.candidates != 1 and effective.uses_clip
                  and not Path(effective.clip_model).expanduser().is_dir())
    if source.kind != "hub" and not needs_clip:
        return
    online = hub_reachable()
    if source.kind == "hub":
        check_hub_model(source.location, local_only=not online)
    if needs_clip and not online:
        name, _, pretrained = effective.clip_model.partition(":")
        check_clip_weights(name, pretrained or None, effective.clip_model)
