"""Command-line options generated from the pydantic settings, so flags, help and defaults have one source."""
from __future__ import annotations

import argparse
import types
import typing
from typing import Any, Iterable, Literal, Union

from pydantic import BaseModel, ValidationError

from latentween.errors import InputError


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _unwrap(annotation: Any) -> Any:
    """Optional[X] -> X."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _float_list(text: str) -> list[float]:
    try:
        return [float(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc


def add_model_arguments(parser: argparse.ArgumentParser, model: type[BaseModel], exclude: Iterable[str] = (),
                        title: str | None = None) -> None:
    """One option per field; the default stays None so only what the user typed overrides the model."""
    group = parser.add_argument_group(title) if title else parser
    skip = set(exclude)
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        kind = _unwrap(field.annotation)
        kwargs: dict[str, Any] = {"dest": name, "default": None}
        default = field.default
        help_text = (field.description or "") + (f" (default: {default})" if default not in (None, "", []) and
                                                  not callable(field.default_factory) else "")
        if typing.get_origin(kind) is Literal:
            kwargs["choices"] = list(typing.get_args(kind))
        elif typing.get_origin(kind) is list and typing.get_args(kind) == (str,):
            kwargs["action"] = "append"  # repeatable: --lora a --lora b:0.5
            kwargs["metavar"] = name.upper()
        elif typing.get_origin(kind) is list:
            kwargs["type"] = _float_list
            kwargs["metavar"] = "A,B,..."
        elif kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif kind in (int, float):
            kwargs["type"] = kind
        group.add_argument(flag(name), help=help_text.replace("%", "%%"), **kwargs)


def model_from_args(model: type[BaseModel], args: argparse.Namespace, **fixed: Any) -> BaseModel:
    """Build and validate the settings; a bad value becomes one InputError line naming the flag."""
    values = {name: getattr(args, name) for name in model.model_fields if getattr(args, name, None) is not None}
    values.update({k: v for k, v in fixed.items() if v is not None})
    try:
        return model(**values)
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc)) from exc


# pydantic's wording for the common mistakes, said as the rest of our errors say things
_OUR_WORDS = {
    "greater_than_equal": "must be at least {ge}", "less_than_equal": "must be at most {le}",
    "greater_than": "must be more than {gt}", "less_than": "must be less than {lt}",
    "literal_error": "must be one of {expected}", "string_too_long": "must be at most {max_length} characters",
    "int_parsing": "must be a whole number", "int_from_float": "must be a whole number",
    "float_parsing": "must be a number", "bool_parsing": "must be true or false",
}


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = flag(str(error["loc"][0])) if error.get("loc") else "settings"
        words = _OUR_WORDS.get(error["type"])
        message = words.format(**error.get("ctx") or {}) if words else error["msg"].removeprefix("Value error, ")
        given = error.get("input")
        if words and isinstance(given, (int, float, str)) and len(str(given)) <= 40:
            message += f", got {given!r}" if isinstance(given, str) else f", got {given}"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
