"""YAML loading that remembers where every value came from.

Errors must name the file and line, so we compose the node tree ourselves and keep a map
from each key path to its line before handing plain data to pydantic.

A brief may come from someone else, so reading is bounded before anything is built: the
file must be a regular file of at most :data:`MAX_YAML_BYTES`; nesting deeper than
:data:`MAX_DEPTH` is refused from the event stream (PyYAML composes recursively, so a
5000-deep list would otherwise end in a ``RecursionError``); and the document as
validation will see it, with every alias expanded, may hold at most
:data:`MAX_VALUES` values (a 1 KB "billion laughs" alias bomb expands to gigabytes).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from bildwerk.atomicio import sha256_bytes
from bildwerk.boundedfile import FileRefused, MiB, read_regular_file
from bildwerk.errors import ConfigError

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

#: Largest YAML file read (briefs, brand kits, settings are a few KB).
MAX_YAML_BYTES = 4 * MiB
#: Deepest nesting of lists and mappings (briefs nest about six levels).
MAX_DEPTH = 64
#: Most values (scalars, lists, mappings) in a document with every alias expanded.
MAX_VALUES = 100_000


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


def _dotted(loc: Loc) -> str | None:
    return ".".join(str(p) for p in loc) or None


def _check_nesting(text: str, path: Path) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` from the (non-recursive) event stream,
    before the recursive composer sees it. Tracks the key path to name the field."""
    # one frame per open collection: [is_mapping, items seen, current key or index]
    frames: list[list[Any]] = []
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        is_node = isinstance(event, (yaml.NodeEvent, yaml.CollectionStartEvent))
        if is_node and frames:
            frame = frames[-1]
            if frame[0]:
                if frame[1] % 2 == 0:  # a key
                    frame[2] = event.value if isinstance(event, yaml.ScalarEvent) else "?"
            else:
                frame[2] = frame[1]
            frame[1] += 1
        if isinstance(event, yaml.CollectionStartEvent):
            if len(frames) >= MAX_DEPTH:
                loc = tuple(f[2] for f in frames)
                raise ConfigError(
                    path,
                    f"nesting is deeper than the limit of {MAX_DEPTH} levels",
                    line=event.start_mark.line + 1 if event.start_mark else None,
                    field=_dotted(loc[:8]) if loc else None,
                    hint="flatten the structure; no bildwerk file nests this deep",
                )
            frames.append([isinstance(event, yaml.MappingStartEvent), 0, None])
        elif isinstance(event, yaml.CollectionEndEvent):
            frames.pop()


def _walk(root: yaml.Node, out: dict[Loc, int], path: Path) -> None:
    """Map every key path to its line, visiting the tree as validation will see it (aliases
    expanded), iteratively and within :data:`MAX_VALUES` values and :data:`MAX_DEPTH`."""
    todo: list[tuple[yaml.Node, Loc]] = [(root, ())]
    visited = 0
    while todo:
        node, loc = todo.pop()
        visited += 1
        if visited > MAX_VALUES or len(loc) > MAX_DEPTH:
            over = visited > MAX_VALUES
            raise ConfigError(
                path,
                f"expands to more than the limit of {MAX_VALUES} values"
                if over
                else f"nesting is deeper than the limit of {MAX_DEPTH} levels",
                line=node.start_mark.line + 1,
                field=_dotted(loc[:8]),
                hint="YAML aliases (*name) repeat what they point at; write the values out "
                "or use fewer aliases"
                if over
                else "aliases nest what they point at; use fewer of them",
            )
        out.setdefault(loc, node.start_mark.line + 1)
        children: list[tuple[yaml.Node, Loc]] = []
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
                children.append((value_node, (*loc, key)))
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, (*loc, i)) for i, item in enumerate(node.value)]
        todo.extend(reversed(children))


def read_yaml(path: Path) -> YamlDoc:
    """Read a UTF-8 YAML file; every failure is a :class:`ConfigError` naming the line."""
    try:
        raw = read_regular_file(path, limit=MAX_YAML_BYTES, what="YAML file")
    except FileRefused as exc:
        hint = "check the path" if exc.reason == "file not found" else exc.hint
        raise ConfigError(path, exc.reason, hint=hint) from None
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
    lines: dict[Loc, int] = {}
    try:
        _check_nesting(text, path)
        loader = _NoDuplicatesLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _walk(node, lines, path)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
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
