"""What the contract mixins share: hiding an extra's modules, and JSON checks.

An extra is "missing" when importing any of its modules fails. Putting ``None`` into
``sys.modules`` makes the next ``import`` of that name raise ``ImportError`` exactly as an
absent package does (``importlib.util.find_spec`` then answers ``None`` too); a module
already bound to a name in some other module is not affected, which is why the mixins ask
for a fresh plugin instance and a hook that forgets process-wide model caches.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable
from typing import Any

import pytest

from bildwerk.registry import EXTRA_PACKAGES


def extra_modules(extra: str) -> tuple[str, ...]:
    """The import names one of bildwerk's extras provides (``"qa"`` → onnxruntime, cv2…)."""
    return tuple(sorted(m for m, (_, e) in EXTRA_PACKAGES.items() if e == extra))


OPTIONAL_MODULES: tuple[str, ...] = tuple(sorted(EXTRA_PACKAGES))
"""Every module any bildwerk extra provides: a plugin that needs no extra works with all
of them hidden."""


def hide_modules(monkeypatch: pytest.MonkeyPatch, modules: Iterable[str]) -> None:
    """Make importing each of ``modules`` (and their submodules) fail until the test ends."""
    for name in modules:
        for loaded in [m for m in sys.modules if m.startswith(name + ".")]:
            monkeypatch.delitem(sys.modules, loaded)
        monkeypatch.setitem(sys.modules, name, None)


def package_names(modules: Iterable[str]) -> set[str]:
    """What a message about a missing module may call it: the import name, or the
    package that installs it (``cv2`` or ``opencv-python-headless``)."""
    names: set[str] = set()
    for module in modules:
        names.add(module)
        if module in EXTRA_PACKAGES:
            names.add(EXTRA_PACKAGES[module][0])
    return names


def assert_json(value: Any, what: str) -> None:
    """``value`` survives a strict JSON round trip unchanged: plain dicts with string
    keys, lists, strings, finite numbers, booleans and None (no tuples, no NaN), so the
    catalog, the manifest and the report store exactly what the plugin returned."""
    try:
        text = json.dumps(value, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"{what} is not JSON-serialisable: {exc}") from exc
    _no_tuples(value, what)
    assert json.loads(text) == value, f"{what} changes in a JSON round trip"


def _no_tuples(value: Any, what: str) -> None:
    if isinstance(value, tuple):
        raise AssertionError(f"{what} holds a tuple {value!r}; JSON gives back a list")
    if isinstance(value, dict):
        for key, item in value.items():
            _no_tuples(item, f"{what}[{key!r}]")
    elif isinstance(value, list):
        for item in value:
            _no_tuples(item, what)
    elif isinstance(value, float):
        assert math.isfinite(value), f"{what} holds {value}"
