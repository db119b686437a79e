"""Command-line options generated from a config dataclass: one place for each default and its help.

A field's help is its `metadata["help"]` (see `option`); the option is `--field-name`; its type, default and
`None`-ability come from the annotation and the default.
"""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any


def option(default: Any, help: str) -> Any:
    """A dataclass field with a default and the help text its command-line option shows."""
    return dataclasses.field(default=default, metadata={"help": help})


def _base_type(annotation: Any) -> type:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def add_options(parser: argparse.ArgumentParser, cls: type, required: tuple[str, ...] = (),
                choices: dict[str, list[str]] | None = None) -> None:
    """One option per field of dataclass `cls`; `required` fields must be given; `choices` restrict values."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = _base_type(hints[f.name])
        note = " (required)" if f.name in required else " (default: %(default)s)"
        kw: dict[str, Any] = {"help": f.metadata.get("help", "") + note, "dest": f.name}
        if kind is bool:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = kind
        if f.name in required:
            kw["required"] = True
        else:
            kw["default"] = f.default
        if choices and f.name in choices:
            kw["choices"] = choices[f.name]
        parser.add_argument("--" + f.name.replace("_", "-"), **kw)


def from_options(cls: type, args: argparse.Namespace) -> Any:
    """The dataclass built from the parsed options that `add_options` declared."""
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})
