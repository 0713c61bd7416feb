"""Test helpers for bildwerk and for plugin authors.

* Tiny random diffusion models built in code (:mod:`.tiny_models`): ``tiny_sd15``,
  ``tiny_sdxl``, ``tiny_inpaint``, ``tiny_controlnet``, ``tiny_lora``,
  ``tiny_textual_inversion``, ``write_vocab``.
* Contract tests, one mixin of pytest tests per extension point: subclass it in a
  ``Test…`` class, provide the small hook it documents, and your plugin is held to the
  same rules as the built-ins (names, JSON evidence, score range, determinism, what
  happens without its extra): :class:`BackendContract`, :class:`CheckContract`,
  :class:`PublishTargetContract`, :class:`NotifierContract`, :class:`ExecutorContract`,
  :class:`BlobStoreContract`. See ``docs/plugins.md``.

The contracts need pytest and are imported on first use, so importing this package for
the model builders needs neither pytest nor torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bildwerk.testing.tiny_models import (
    TEXT_DIM,
    tiny_controlnet,
    tiny_inpaint,
    tiny_lora,
    tiny_sd15,
    tiny_sdxl,
    tiny_textual_inversion,
    unet_config,
    write_vocab,
)

if TYPE_CHECKING:
    from bildwerk.testing.backends import BackendContract
    from bildwerk.testing.blob_stores import BlobStoreContract
    from bildwerk.testing.checks import CheckContract
    from bildwerk.testing.executors import ExecutorContract
    from bildwerk.testing.publishers import NotifierContract, PublishTargetContract

_LAZY = {
    "BackendContract": "bildwerk.testing.backends",
    "BlobStoreContract": "bildwerk.testing.blob_stores",
    "CheckContract": "bildwerk.testing.checks",
    "ExecutorContract": "bildwerk.testing.executors",
    "NotifierContract": "bildwerk.testing.publishers",
    "PublishTargetContract": "bildwerk.testing.publishers",
}

__all__ = [
    "TEXT_DIM",
    "BackendContract",
    "BlobStoreContract",
    "CheckContract",
    "ExecutorContract",
    "NotifierContract",
    "PublishTargetContract",
    "tiny_controlnet",
    "tiny_inpaint",
    "tiny_lora",
    "tiny_sd15",
    "tiny_sdxl",
    "tiny_textual_inversion",
    "unet_config",
    "write_vocab",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bildwerk.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
