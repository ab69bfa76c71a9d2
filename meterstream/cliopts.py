"""Command-line options generated from the settings, so `--help` documents every knob once.

``--sim-meters 5`` and ``METERSTREAM_SIM_METERS=5`` set the same field; an option given on the
command line wins over the environment and the dotenv files. Help texts come from the settings'
field descriptions, and each option names its environment variable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

import click
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from meterstream.settings import ENV_PREFIX, Settings, parse_duration

F = TypeVar("F", bound=Callable[..., Any])

_OVERRIDES_KEY = "meterstream_overrides"


def _is_duration(field: FieldInfo) -> bool:
    metadata = list(field.metadata)
    for arg in get_args(field.annotation):  # `Duration | None` keeps Annotated inside the union
        if get_origin(arg) is Annotated:
            metadata.extend(get_args(arg)[1:])
    return any(getattr(m, "func", None) is parse_duration for m in metadata)


_PLAIN_TYPES: dict[Any, tuple[Any, bool, str | None]] = {
    bool: (bool, True, None),
    int: (int, False, None),
    float: (float, False, None),
    Path: (click.Path(path_type=Path), False, None),
    SecretStr: (str, False, "SECRET"),
}


def _click_type(field: FieldInfo) -> tuple[Any, bool, str | None]:
    """(click type, is a flag, metavar) for a settings field."""
    annotation = field.annotation
    args = [a for a in get_args(annotation) if a is not type(None)] or [annotation]
    base = annotation if get_origin(annotation) is Literal else args[0]
    if get_origin(base) is Literal:
        return click.Choice([str(v) for v in get_args(base)]), False, None
    if _is_duration(field):
        return str, False, "DURATION"  # 90, 90s, 5m, 1h30m: parsed by the settings layer
    # Anything else (datetimes, text) goes through as text and is parsed by the settings layer.
    return _PLAIN_TYPES.get(base, (str, False, None))


def _option(group: str | None, name: str, field: FieldInfo) -> Callable[[F], F]:
    dotted = f"{group}.{name}" if group else name
    flag = "--" + (f"{group}-{name}" if group else name).replace("_", "-")
    env = ENV_PREFIX + (f"{group}_{name}" if group else name).upper()
    click_type, is_flag, metavar = _click_type(field)
    secret = metavar == "SECRET"
    default = field.default
    shown = "" if secret or default is None or default == "" else f" [default: {default}]"
    help_text = f"{field.description or ''}{shown} [env: {env}]"

    def store(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value is not None:
            ctx.meta.setdefault(_OVERRIDES_KEY, {})[dotted] = value
        return value

    if is_flag:
        return click.option(
            flag + "/--no-" + flag[2:],
            default=None,
            help=help_text,
            callback=store,
            expose_value=False,
        )
    return click.option(
        flag,
        type=click_type,
        default=None,
        help=help_text,
        callback=store,
        expose_value=False,
        metavar=metavar,
    )


def settings_options(*groups: str, top_level: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Add one option per field of the named settings groups (and of the top-level fields)."""

    def decorate(command: F) -> F:
        decorators: list[Callable[[F], F]] = []
        for name in top_level:
            decorators.append(_option(None, name, Settings.model_fields[name]))
        for group in groups:
            model = Settings.model_fields[group].annotation
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise TypeError(f"settings field {group!r} is not a group")
            for name, field in model.model_fields.items():
                decorators.append(_option(group, name, field))
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return decorate


def overrides_from(ctx: click.Context) -> dict[str, Any]:
    """The options given on the command line, nested as the settings want them."""
    flat: Mapping[str, Any] = ctx.meta.get(_OVERRIDES_KEY, {})
    nested: dict[str, Any] = {}
    for dotted, value in flat.items():
        if "." in dotted:
            group, name = dotted.split(".", 1)
            nested.setdefault(group, {})[name] = value
        else:
            nested[dotted] = value
    return nested
