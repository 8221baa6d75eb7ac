"""Command-line flags generated from the settings' fields, so a flag's help cannot drift from its setting."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from agents.settings import Settings

OVERRIDES = "overrides"


@dataclass(frozen=True)
class SettingFlag:
    """A flag setting the field at a dotted ``path``; a stage's ``enabled`` becomes ``--no-<stage>``."""

    path: str
    name: str | None = None

    @property
    def switch(self) -> bool:
        """Whether this is a stage's off switch."""
        return self.path.endswith(".enabled")

    @property
    def option(self) -> str:
        """The flag as typed, e.g. ``--no-route`` or ``--rerank-k``."""
        if self.name is not None:
            return self.name
        group, field = self.path.rsplit(".", 1)
        return f"--no-{group}" if self.switch else "--" + field.replace("_", "-")

    @property
    def parameter(self) -> str:
        """The command function's parameter name."""
        return self.option.removeprefix("--").replace("-", "_")

    def value(self, given: Any) -> Any:
        """The setting's value for what the command received; None when the flag was not given."""
        if self.switch:
            return False if given else None
        return given


def setting_field(path: str) -> FieldInfo:
    """The field of the setting at a dotted ``path``, as in ``retrieve.k``."""
    model: type[BaseModel] = Settings
    *groups, name = path.split(".")
    for group in groups:
        annotation = model.model_fields[group].annotation
        assert isinstance(annotation, type) and issubclass(annotation, BaseModel), path
        model = annotation
    return model.model_fields[name]


def flag_help(flag: SettingFlag) -> str:
    """What the flag does, from its setting's description and default."""
    field = setting_field(flag.path)
    if flag.switch:
        stage = flag.path.split(".")[0]
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        when_off = f": {extra['when_off']}" if extra.get("when_off") else ""
        return f"Skip the {stage} stage{when_off} ({flag.path}=false)."
    default = "unset" if field.default is None else field.default
    return f"{field.description} ({flag.path}, default {default})"


def _parameter(flag: SettingFlag) -> inspect.Parameter:
    if flag.switch:
        option = typer.Option(flag.option, help=flag_help(flag), metavar="", show_default=False)
        return inspect.Parameter(
            flag.parameter, inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[bool, option]
        )
    kind = setting_field(flag.path).annotation
    option = typer.Option(flag.option, help=flag_help(flag), show_default=False)
    return inspect.Parameter(
        flag.parameter,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[kind | None, option],  # type: ignore[operator]  # a runtime type union
    )


def settings_overrides(values: dict[str, Any]) -> dict[str, Any]:
    """Nested settings overrides from dotted paths; None means the flag was not given."""
    nested: dict[str, Any] = {}
    for path, value in values.items():
        if value is None:
            continue
        *groups, name = path.split(".")
        target = nested
        for group in groups:
            target = target.setdefault(group, {})
        target[name] = value
    return nested


def with_setting_flags(*flags: SettingFlag) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command one option per flag; it receives what was given as nested ``overrides``."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != OVERRIDES]

        @functools.wraps(command)
        def run(**kwargs: Any) -> None:
            values = {flag.path: flag.value(kwargs.pop(flag.parameter)) for flag in flags}
            command(**kwargs, overrides=settings_overrides(values))

        parameters = [*own, *(_parameter(flag) for flag in flags)]
        run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        return run

    return decorate
