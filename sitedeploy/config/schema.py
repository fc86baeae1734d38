"""Turn a TOML table into a frozen dataclass, collecting every problem with its key path.

A small, strict reader: each dataclass field is a config key; its type hint says what the
value must be. Unknown keys are rejected with a "did you mean" hint. Nothing is raised here;
problems are appended to a list so that ``config.load`` can report all of them at once, the
way MkDocs does (``Config value 'x': ...``).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from .ranges import Check

T = TypeVar("T")


def required(*checks: Check) -> Any:
    """A field that has no default: the key must be in the file."""
    return dataclasses.field(default=None, metadata={"required": True, "checks": checks})


def setting(default: Any, *checks: Check) -> Any:
    """A field with a default and range checks that ``parse_table`` runs on the file's value.

    The checks report at the key's own path (``agent.interval: must be ...``) and all of them
    are collected, unlike a ``__post_init__`` that can only raise the first problem.
    """
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"checks": checks})
    return dataclasses.field(default=default, metadata={"checks": checks})


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a choice is close to ``word``, else an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def is_valid(obj: object) -> bool:
    """False for the placeholder ``parse_table`` returns when a table had problems."""
    return bool(vars(obj))


def parse_table(cls: type[T], raw: Any, path: str, problems: list[str]) -> T:
    """Build ``cls`` from ``raw``; append ``"<path>.<key>: <problem>"`` lines to ``problems``."""
    if not isinstance(raw, dict):
        problems.append(f"{path}: must be a table, got {_kind(raw)}")
        raw = {}
    before = len(problems)
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    for key in raw:
        if key not in fields:
            problems.append(f"{_join(path, key)}: unknown key{did_you_mean(key, fields)}")
    values: dict[str, Any] = {}
    for name, field in fields.items():
        key_path = _join(path, name)
        if name in raw:
            typed = len(problems)
            values[name] = parse_value(hints[name], raw[name], key_path, problems)
            if len(problems) == typed:  # range checks only make sense for a well-typed value
                _run_checks(field, values[name], key_path, problems)
        elif field.metadata.get("required"):
            problems.append(f"{key_path}: required")
    if len(problems) > before:  # a half-valid table would only add confusing follow-on errors
        return cls.__new__(cls)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:  # a field's own check in __post_init__
        problems.append(f"{path}: {exc}")
        return cls.__new__(cls)


def _run_checks(field: dataclasses.Field[Any], value: Any, path: str, problems: list[str]) -> None:
    for check in field.metadata.get("checks", ()):
        problem = check(value)
        if problem is not None:
            problems.append(f"{path}: {problem}")


def parse_value(hint: Any, value: Any, path: str, problems: list[str]) -> Any:
    """Check ``value`` against a type hint; return the converted value (lists become tuples)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return _parse_union(hint, value, path, problems)
    if origin is Literal:
        allowed = get_args(hint)
        if value not in allowed:
            names = ", ".join(repr(a) for a in allowed)
            hint_text = did_you_mean(str(value), [str(a) for a in allowed])
            problems.append(f"{path}: must be one of {names}, got {value!r}{hint_text}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, list):
            problems.append(f"{path}: must be a list, got {_kind(value)}")
            return ()
        (item_hint, *_) = get_args(hint) or (Any,)
        return tuple(parse_value(item_hint, v, f"{path}[{i}]", problems) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{path}: must be a table, got {_kind(value)}")
            return {}
        _, value_hint = get_args(hint)
        return {k: parse_value(value_hint, v, _join(path, k), problems) for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return parse_table(hint, value, path, problems)  # type: ignore[arg-type]
    return _parse_scalar(hint, value, path, problems)


def _parse_union(hint: Any, value: Any, path: str, problems: list[str]) -> Any:
    options = [a for a in get_args(hint) if a is not type(None)]
    if len(options) == 1:
        return parse_value(options[0], value, path, problems)
    for option in options:  # first option that accepts the value wins
        trial: list[str] = []
        result = parse_value(option, value, path, trial)
        if not trial:
            return result
    problems.append(f"{path}: unexpected value {value!r}")
    return value


def _parse_scalar(hint: Any, value: Any, path: str, problems: list[str]) -> Any:
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (hint is int and isinstance(value, bool)) or not isinstance(value, hint):
        problems.append(f"{path}: must be {_name(hint)}, got {_kind(value)} {value!r}")
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _name(hint: Any) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


def _kind(value: Any) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)
