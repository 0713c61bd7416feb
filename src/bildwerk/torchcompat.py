"""Importing torchvision when its wheel was built for another torch variant.

PyPI's torchvision wheel is a CUDA build; beside a CPU build of the same torch release
its compiled operators don't load, and importing it fails while registering fake
kernels for ``torchvision::nms``. bildwerk never calls torchvision's compiled operators
(spandrel needs only its pure-Python transforms), so declaring the two operator schemas
it registers first lets the Python part import. Nothing is declared when torchvision
imports on its own.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from typing import Any

_DECLARED: list[Any] = []  # keep the Library object alive for the process


def ensure_torchvision() -> None:
    if "torchvision" in sys.modules or importlib.util.find_spec("torchvision") is None:
        return
    try:
        importlib.import_module("torchvision")
        return
    except Exception:
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
    import torch

    lib = torch.library.Library("torchvision", "DEF")  # type: ignore[no-untyped-call]
    for op in ("nms", "qnms"):
        with contextlib.suppress(RuntimeError):  # already declared
            lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")  # type: ignore[no-untyped-call]
    _DECLARED.append(lib)
    importlib.import_module("torchvision")
