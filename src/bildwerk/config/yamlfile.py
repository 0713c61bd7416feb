"""YAML loading that remembers where every value came from.

Errors must name the file and line, so we compose the node tree ourselves and keep a map
from each key path to its line before handing plain data to pydantic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from bildwerk.atomicio import sha256_bytes
from bildwerk.errors import ConfigError

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class YamlDoc:
    """Parsed YAML plus the line of every key path and the sha256 of the raw bytes."""

    path: Path
    data: Any
    sha256: str
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Iterable[str | int]) -> int | None:
        """Line of the deepest known prefix of ``loc`` (1-based)."""
        parts = tuple(loc)
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return self.lines.get((), None)


class _NoDuplicatesLoader(yaml.SafeLoader):
    pass


def _walk(node: yaml.Node, loc: Loc, out: dict[Loc, int], path: Path) -> None:
    out.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            if key in seen:
                raise ConfigError(
                    path,
                    f"key '{key}' appears twice",
                    line=key_node.start_mark.line + 1,
                    hint="remove one of the two entries",
                )
            seen.add(key)
            out[(*loc, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*loc, key), out, path)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*loc, i), out, path)


def read_yaml(path: Path) -> YamlDoc:
    """Read a UTF-8 YAML file; every failure is a :class:`ConfigError` naming the line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, "file not found", hint="check the path") from None
    except OSError as exc:
        raise ConfigError(path, f"cannot read file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            path,
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
            line=line,
            hint="save the file as UTF-8",
        ) from None
    text = text.removeprefix("\ufeff")
    try:
        node = yaml.compose(text, Loader=_NoDuplicatesLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "malformed YAML"
        raise ConfigError(
            path,
            f"malformed YAML: {problem}",
            line=mark.line + 1 if mark else None,
            hint="fix the YAML syntax (indentation, quotes, colons)",
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, f"malformed YAML: {exc}") from None
    lines: dict[Loc, int] = {}
    if node is not None:
        _walk(node, (), lines, path)
    return YamlDoc(path=path, data=data, sha256=sha256_bytes(raw), lines=lines)


def _describe(err: dict[str, Any]) -> tuple[str, str | None]:
    kind = err.get("type", "")
    msg = str(err.get("msg", "invalid value"))
    if kind == "extra_forbidden":
        return "unknown key", "remove it or check its spelling against the documentation"
    if kind == "missing":
        return "required key is missing", "add it"
    if kind == "too_short":
        return "is empty", "give at least one value"
    if msg.startswith("Value error, "):
        msg = msg.removeprefix("Value error, ")
    return msg, None


def first_error(exc: ValidationError) -> tuple[Loc, str, str | None]:
    """The first error of ``exc`` as (key path, message, hint), the message saying how
    many more there are: pydantic's own text ("2 validation errors for Channel") names
    neither the field nor the bound."""
    errors = exc.errors()
    err = errors[0]
    loc = tuple(
        p
        for p in err["loc"]
        if not (isinstance(p, str) and (p.startswith("function-") or p == "[key]"))
    )
    message, hint = _describe(dict(err))
    if str(err.get("type", "")).startswith(("greater", "less")) and "input" in err:
        message = f"{message} (got {str(err['input'])[:40]})"
    if len(errors) > 1:
        more = errors[1]
        where = ".".join(str(p) for p in more["loc"]) or "the entry"
        extra = f"{where}: {_describe(dict(more))[0]}"
        message += f"; also {extra}" + (f" and {len(errors) - 2} more" if len(errors) > 2 else "")
    return loc, message, hint


def validate(doc: YamlDoc, model: type[M], *, context: dict[str, Any] | None = None) -> M:
    """Validate a parsed YAML document against a pydantic model, reporting the first error
    with its file, line and dotted field name."""
    if doc.data is None:
        raise ConfigError(doc.path, "file is empty", hint=f"write a {model.__name__} document")
    if not isinstance(doc.data, dict):
        raise ConfigError(doc.path, "top level must be a mapping of keys", line=1)
    try:
        return model.model_validate(doc.data, context={"doc": doc, **(context or {})})
    except ValidationError as exc:
        loc, message, hint = first_error(exc)
        dotted = ".".join(str(p) for p in loc) or None
        raise ConfigError(
            doc.path, message, line=doc.line_of(loc), field=dotted, hint=hint
        ) from None
