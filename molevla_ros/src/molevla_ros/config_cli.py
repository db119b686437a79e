"""Command-line options generated from a config dataclass: one place for each default and its help.

A field's help is its `metadata["help"]` (see `option`); the option is `--field-name` (or a positional
argument); its type, default and `None`-ability come from the annotation and the default. A `tuple[T, ...]`
field is a comma list (`--tasks touch,push`), or one or more words when positional.
"""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

REQUIRED = dataclasses.MISSING


def option(default: Any, help: str, choices: typing.Sequence[str] | None = None, positional: bool = False) -> Any:
    """A dataclass field with a default (`REQUIRED`: none, the option must be given), the help text its
    command-line option shows, and optionally the allowed values (each item's, for a tuple field)."""
    meta = {"help": help, "choices": list(choices) if choices else None, "positional": positional}
    return dataclasses.field(default=default, metadata=meta)


def _base_type(annotation: Any) -> type:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def _comma_list(item: type, choices: list[str] | None) -> typing.Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        values = tuple(item(v.strip()) for v in text.split(",") if v.strip())
        bad = [v for v in values if choices and v not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {bad}; known: {', '.join(choices)}")
        return values
    return parse


def add_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """One command-line option (or positional argument) per field of dataclass `cls`."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = _base_type(hints[f.name])
        required = f.default is REQUIRED
        positional = f.metadata.get("positional", False)
        choices = f.metadata.get("choices")
        kw: dict[str, Any] = {"help": f.metadata.get("help", "")}
        if typing.get_origin(kind) is tuple:
            item = typing.get_args(kind)[0]
            if positional:
                kw.update(type=item, nargs="+", choices=choices)
            else:
                kw["type"] = _comma_list(item, choices)
        elif kind is bool:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw.update(type=kind, choices=choices)
        if positional:
            parser.add_argument(f.name, **kw)
            continue
        if required:
            kw.update(required=True, help=kw["help"] + " (required)")
        else:
            shown = ",".join(map(str, f.default)) if isinstance(f.default, tuple) else "%(default)s"
            kw.update(default=f.default, help=kw["help"] + f" (default: {shown})")
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, **kw)


def from_options(cls: type, args: argparse.Namespace) -> Any:
    """The dataclass built from the parsed options that `add_options` declared."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
