"""Process-wide state is set by configure_runtime() from the entry points, never by an import or a
model manager; settings shared between commands and the daemon's checks come from the settings model."""
from __future__ import annotations

import argparse
import inspect
import os
import subprocess
import sys

import pytest
import torch


def _run(code: str, env: dict | None = None) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout.strip()


def _without_runtime_environment() -> dict:
    """This process's environment less what configure_runtime sets (conftest called it here)."""
    from latentween.runtime import RAY_ENVIRONMENT
    from latentween.threads import WAIT_POLICY

    return {k: v for k, v in os.environ.items() if k not in {*WAIT_POLICY, *RAY_ENVIRONMENT}}


def test_importing_the_cli_and_the_farm_changes_no_environment_variable():
    code = ("import os; before = dict(os.environ)\n"
            "import latentween.cli, latentween.farm, latentween.runtime\n"
            "print(sorted(set(os.environ.items()) ^ set(before.items())))")
    assert _run(code, _without_runtime_environment()) == "[]"


def test_a_model_manager_leaves_torchs_flags_alone(monkeypatch):
    from latentween import models

    monkeypatch.setattr(models, "pick_device", lambda requested: torch.device("cuda"))  # the flags are CUDA's
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    models.ModelManager()
    assert (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic) == (True, False)


def test_configure_runtime_makes_cuda_kernels_repeatable(monkeypatch):
    from latentween.runtime import configure_runtime

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    configure_runtime()
    assert (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic) == (False, True)


def test_configure_runtime_without_torch_sets_the_environment_and_loads_no_torch():
    code = ("import os, sys; from latentween.runtime import configure_runtime; configure_runtime(torch=False)\n"
            "print(os.environ['OMP_WAIT_POLICY'], os.environ['RAY_DISABLE_FAILURE_SIGNAL_HANDLER'], 'torch' in sys.modules)")
    assert _run(code, _without_runtime_environment()).split() == ["PASSIVE", "1", "False"]


def test_configure_runtime_keeps_what_the_user_set():
    from latentween.runtime import configure_environment

    environ = {"OMP_WAIT_POLICY": "ACTIVE", "RAY_DISABLE_FAILURE_SIGNAL_HANDLER": "0"}
    configure_environment(environ)
    assert environ["OMP_WAIT_POLICY"] == "ACTIVE" and environ["RAY_DISABLE_FAILURE_SIGNAL_HANDLER"] == "0"


def test_an_engine_command_sets_torchs_flags_before_it_runs(tmp_path):
    code = ("import torch; torch.backends.cudnn.deterministic = False\n"
            "from latentween.cli import main\n"
            f"main(['eval', '--pairs', '0', '--out', {str(tmp_path)!r}])\n"  # refused at once, after the set-up
            "print(torch.backends.cudnn.deterministic)")
    assert _run(code) == "True"


def test_the_daemon_checks_every_text_setting_not_marked_free_text_or_a_fixed_choice():
    import typing

    from latentween.server import security
    from latentween.settings import FREE_TEXT, MorphSettings

    marked = {name for name, field in MorphSettings.model_fields.items()
              if FREE_TEXT in field.metadata or typing.get_origin(field.annotation) is typing.Literal}
    assert security.FREE_TEXT == marked and {"choose", "scheduler", "appearance"} <= marked
    assert {"model", "points", "pose", "lora", "controlnet", "clip_model"}.isdisjoint(security.FREE_TEXT)


def test_the_daemon_accepts_a_choice_that_is_no_hub_id(tmp_path):
    from latentween.server.config import ServerConfig
    from latentween.server.security import check_settings_paths
    from latentween.settings import MorphSettings

    # `+` is not in a hub id; as a fixed choice it names no file
    check_settings_paths(MorphSettings(choose="clip+consistency"), ServerConfig(state_dir=tmp_path))


def test_eval_takes_the_jobs_defaults_where_it_has_none_of_its_own():
    from latentween.settings import MorphSettings
    from latentween.toyworld.defaults import EVAL_DEFAULTS, SHARED_MORPH
    from latentween.toyworld.evaluate import EvalConfig

    job, config = MorphSettings(), EvalConfig()
    for name in SHARED_MORPH:
        assert getattr(config, name) == EVAL_DEFAULTS.get(name, getattr(job, name)), name


def test_eval_flags_default_to_the_eval_config():
    from latentween.cli import build_parser
    from latentween.toyworld.defaults import SHARED_MORPH, SHARED_RUNTIME
    from latentween.toyworld.evaluate import EvalConfig

    args = build_parser().parse_args(["eval", "--out", "x"])
    config = EvalConfig()
    assert {n: getattr(args, n) for n in SHARED_MORPH + SHARED_RUNTIME} == \
        {n: getattr(config, n) for n in SHARED_MORPH + SHARED_RUNTIME}


@pytest.mark.parametrize("flag, value", [("--frames", "9.5"), ("--dtype", "float64")])
def test_eval_flags_take_the_settings_types(flag, value, capsys):
    from latentween.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["eval", "--out", "x", flag, value])


def test_the_daemons_flags_are_grouped_without_argparse_internals():
    from latentween.cli import serve

    assert "_action_groups" not in inspect.getsource(serve)
    sub = argparse.ArgumentParser().add_subparsers()
    serve.register(sub)
    parser = sub.choices["serve"]
    shown = parser.format_help().split("\ndaemon:\n")[1].split("\nruntime:\n")[0]
    assert "--host HOST" in shown and "--token TOKEN" in shown and "--allow-root DIR" in shown


def test_media_writes_files_and_runs_no_engine():
    import ast

    for module in ("deliver", "ordered", "writers", "frames"):
        tree = ast.parse(inspect.getsource(__import__(f"latentween.media.{module}", fromlist=["_"])))
        imported = {(node.module, alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                    for alias in node.names}
        assert not {("latentween.models", "ModelManager"), ("latentween.morph", "run_morph")} & imported, module
