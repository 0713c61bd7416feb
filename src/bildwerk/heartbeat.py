"""A heartbeat: a daemon thread calling one function every few seconds while a block runs.

Leases (a run's, a run's job claims) stay alive through it. A beat that fails is simply
tried again at the next one: the worst a missed beat causes is an expired lease, which
the lease's owner (or a worker taking the run over) handles.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from types import TracebackType


class Heartbeat:
    def __init__(self, beat: Callable[[], None], every: float, name: str) -> None:
        self._beat, self._every = beat, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            with contextlib.suppress(Exception):  # tried again at the next beat
                self._beat()
