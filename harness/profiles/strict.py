"""Strict, line-numbered construction of dataclasses from YAML.

`load(cls, text, filename)` composes the YAML node tree (which keeps every node's line and
column) and builds `cls` from it by its type hints: unknown keys, missing fields and wrong
types raise `ProfileError` naming `file:line:column`, the field path and a hint. Every
fault of a file is reported at once (`ProfileErrors`), not only the first. A dataclass's
`validate()` may return a message (about the whole object) or an `Invalid` naming the field
below it; every built object remembers where it came from, so checks made after loading
(`problem(obj, at, message)`) point at the right line too.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml


class ProfileError(ValueError):
    """A profile is invalid; the message starts with `file:line:column: field.path:`."""

    def __init__(self, filename: str, mark: yaml.Mark | None, path: str, message: str):
        line = mark.line + 1 if mark is not None else 1
        column = mark.column + 1 if mark is not None else 1
        self.filename, self.line, self.column, self.path = filename, line, column, path
        self.message = message
        super().__init__(f"{filename}:{line}:{column}: {path or '<profile>'}: {message}")


class ProfileErrors(ProfileError):
    """Several faults of one or more files; `errors` lists each, the message has one per line."""

    def __init__(self, errors: list[ProfileError]):
        first = errors[0]
        self.errors = [e for err in errors for e in getattr(err, "errors", [err])]
        self.filename, self.line, self.column, self.path = first.filename, first.line, first.column, first.path
        self.message = first.message
        ValueError.__init__(self, "\n".join(str(e) for e in self.errors))


def errors_of(exc: ProfileError) -> list[ProfileError]:
    """The single faults a ProfileError stands for."""
    return list(getattr(exc, "errors", [exc]))


_SCALARS = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
_SOURCE = "_profile_source"  # (filename, node, field path) kept on every built dataclass


@dataclasses.dataclass(frozen=True)
class Invalid:
    """What `validate()` returns to name the field at fault: `at` is the path of keys and
    list indexes below the object, e.g. `("items", 2)`."""

    at: tuple
    message: str


def problem(obj: Any, at: tuple, message: str) -> ProfileError:
    """A ProfileError at the field `at` (keys and list indexes) below a loaded object, at the
    object's own line when that field is not in the file."""
    filename, node, path = getattr(obj, _SOURCE, ("<profile>", None, ""))
    for step in at:
        child = None
        if isinstance(step, int) and isinstance(node, yaml.SequenceNode) and step < len(node.value):
            child = node.value[step]
        elif isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode)
                          and k.value.replace("-", "_") in (step, str(step).rstrip("_"))), None)
        name = str(step).rstrip("_")
        path = f"{path}[{step}]" if isinstance(step, int) else f"{path}.{name}" if path else name
        if child is None:
            break
        node = child
    return ProfileError(filename, node.start_mark if node is not None else None, path, message)


class _Recorded(Exception):
    """A fault below this node was already recorded (collecting builder)."""


class _Builder:
    """Builds dataclasses from nodes; a collecting builder records every fault and goes on
    with the next field, list item or mapping value."""

    def __init__(self, filename: str, collect: bool = False):
        self.filename = filename
        self.errors: list[ProfileError] | None = [] if collect else None

    def each(self, build) -> tuple[object, bool]:
        """`build()`, or (None, True) when it failed and the fault was recorded."""
        try:
            return build(), False
        except _Recorded:
            return None, True
        except ProfileError as exc:
            if self.errors is None:
                raise
            self.errors.append(exc)
            return None, True

    def fail(self, node, path, message) -> typing.NoReturn:
        raise ProfileError(self.filename, node.start_mark, path, message)

    def build(self, tp: Any, node: yaml.Node, path: str) -> Any:
        origin = get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            options = [a for a in get_args(tp) if a is not type(None)]
            if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
                if len(options) < len(get_args(tp)):
                    return None
            if len(options) == 1:
                return self.build(options[0], node, path)
            errors = []
            for option in options:
                try:
                    return _Builder(self.filename).build(option, node, path)
                except ProfileError as exc:
                    errors.append(exc)
            raise errors[-1]
        if origin is Literal:
            value = self.scalar(node, path)
            if value not in get_args(tp):
                choices = ", ".join(repr(a) for a in get_args(tp))
                self.fail(node, path, f"{value!r} is not one of {choices}")
            return value
        if origin is list:
            if not isinstance(node, yaml.SequenceNode):
                self.fail(node, path, "expected a list")
            (item,) = get_args(tp)
            built = [self.each(lambda: self.build(item, child, f"{path}[{i}]"))
                     for i, child in enumerate(node.value)]
            if any(failed for _, failed in built):
                raise _Recorded
            return [value for value, _ in built]
        if origin is dict:
            if not isinstance(node, yaml.MappingNode):
                self.fail(node, path, "expected a mapping")
            _, value_tp = get_args(tp)
            out, failed = {}, False
            for key_node, value_node in node.value:
                key = self.scalar(key_node, path)
                out[str(key)], bad = self.each(lambda: self.build(value_tp, value_node, f"{path}.{key}"))
                failed = failed or bad
            if failed:
                raise _Recorded
            return out
        if dataclasses.is_dataclass(tp):
            return self.dataclass(tp, node, path)
        if tp in _SCALARS:
            value = self.scalar(node, path)
            if tp is float and isinstance(value, int) and not isinstance(value, bool):
                return float(value)
            if tp is str and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.fail(node, path, f"expected {_SCALARS[tp]}, got {value!r} (quote it)")
            if type(value) is not tp:
                self.fail(node, path, f"expected {_SCALARS[tp]}, got {value!r}")
            return value
        if tp is Any:
            return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
        raise TypeError(f"unsupported schema type {tp!r}")

    def scalar(self, node: yaml.Node, path: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, path, "expected a single value, not a list or mapping")
        return yaml.constructor.SafeConstructor().construct_object(node)

    def dataclass(self, tp: type, node: yaml.Node, path: str) -> Any:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, path, f"expected a mapping with keys {', '.join(_keys(tp))}")
        hints = get_type_hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp) if f.init}
        kwargs, seen, failed = {}, set(), False

        def field_of(key_node, value_node):
            key = str(self.scalar(key_node, path))
            name = key.replace("-", "_")
            sub = f"{path}.{key}" if path else key
            if name == "from":
                name = "from_"
            if name not in fields:
                close = difflib.get_close_matches(key, _keys(tp), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f"; allowed: {', '.join(_keys(tp))}"
                self.fail(key_node, sub, f"unknown key {key!r}{hint}")
            if name in seen:
                self.fail(key_node, sub, f"duplicate key {key!r}")
            seen.add(name)
            kwargs[name] = self.build(hints[name], value_node, sub)

        for key_node, value_node in node.value:
            failed = self.each(lambda: field_of(key_node, value_node))[1] or failed
        for name, f in fields.items():
            if name not in kwargs and name not in seen and f.default is dataclasses.MISSING \
                    and f.default_factory is dataclasses.MISSING:
                failed = self.each(lambda: self.fail(node, path, f"missing required key {name.rstrip('_')!r}"))[1] or failed
        if failed:
            raise _Recorded
        try:
            obj = tp(**kwargs)
        except ValueError as exc:
            self.fail(node, path, str(exc))
        object.__setattr__(obj, _SOURCE, (self.filename, node, path))
        validate = getattr(obj, "validate", None)
        if validate is not None:
            found = validate()
            if isinstance(found, Invalid):
                raise problem(obj, found.at, found.message)
            if found:
                self.fail(node, path, found)
        return obj


def _keys(tp: type) -> list[str]:
    return [f.name.rstrip("_") for f in dataclasses.fields(tp) if f.init]


def load(tp: type, text: str, filename: str) -> Any:
    """Build `tp` from YAML `text`; every error names `filename`, line and column."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise ProfileError(filename, getattr(exc, "problem_mark", None), "",
                           f"not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if node is None:
        raise ProfileError(filename, None, "", "the file is empty")
    builder = _Builder(filename, collect=True)
    try:
        return builder.build(tp, node, "")
    except _Recorded:
        pass
    except ProfileError as exc:
        builder.errors.append(exc)
    raise builder.errors[0] if len(builder.errors) == 1 else ProfileErrors(builder.errors)
