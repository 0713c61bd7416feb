"""Local executors: inline (one worker, no subprocess) and a process pool."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from bildwerk.executors.base import Executor


class InlineExecutor:
    """Runs each call immediately in this process; used for ``--workers 1``."""

    workers = 1

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args))
        except Exception as exc:  # the runner decides what a failure means
            fut.set_exception(exc)
        return fut

    def shutdown(self) -> None:
        return None


def _worker_init() -> None:
    # One encoder/BLAS thread per process: N workers use N cores, and results never
    # depend on thread scheduling.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    try:
        import cv2  # the qa extra; OpenCV would otherwise start a thread per core

        cv2.setNumThreads(1)
    except ImportError:
        pass


class ProcessExecutor:
    """A pool of worker processes (spawned, so it behaves the same on every OS)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init,
        )

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        return self._pool.submit(fn, *args)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def make_executor(workers: int) -> Executor:
    return InlineExecutor() if workers <= 1 else ProcessExecutor(workers)
