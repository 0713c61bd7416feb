"""Executor protocol: where per-job work runs. The runner submits picklable calls and
collects results as they finish; which worker ran what never changes the output."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol


class Executor(Protocol):
    workers: int

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]: ...

    def shutdown(self) -> None: ...
