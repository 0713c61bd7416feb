"""Local executors: inline (one worker, no subprocess) and a process pool."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing.context import SpawnContext, SpawnProcess
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


# Read by BLAS/OpenMP libraries once, when they load. A spawned worker imports numpy
# (through the parent's __main__ or the task's module) before any initializer runs, so
# these must be in the environment the worker process *starts* with.
THREAD_VARS: tuple[str, ...] = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
_environ_lock = threading.Lock()


@contextmanager
def single_threaded_environ() -> Iterator[dict[str, str]]:
    """``os.environ`` with every unset thread variable set to 1, restored on exit.
    A value the user set explicitly is kept."""
    with _environ_lock:
        added = {var: "1" for var in THREAD_VARS if var not in os.environ}
        os.environ.update(added)
        try:
            yield {var: os.environ[var] for var in THREAD_VARS}
        finally:
            for var in added:
                os.environ.pop(var, None)


class _PinnedProcess(SpawnProcess):
    """A spawned process that starts with one BLAS/OpenMP thread. The pool starts
    workers lazily (and restarts dead ones), so the pinning happens at each start."""

    def start(self) -> None:
        with single_threaded_environ():
            super().start()


class _PinnedContext(SpawnContext):
    Process = _PinnedProcess


_limiter: Any = None


def _worker_init() -> None:
    # One encoder/BLAS thread per process: N workers use N cores, and results never
    # depend on thread scheduling. The environment did this for libraries loaded after
    # start; threadpoolctl covers any loaded before the variables were read.
    global _limiter
    try:
        from threadpoolctl import threadpool_limits

        _limiter = threadpool_limits(limits=1)
    except ImportError:  # pragma: no cover - a core dependency; old environments
        pass
    try:
        import cv2  # the qa extra; OpenCV would otherwise start a thread per core

        cv2.setNumThreads(1)
    except ImportError:
        pass


class ProcessExecutor:
    """A pool of worker processes (spawned, so it behaves the same on every OS), each
    with one BLAS/OpenMP thread."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=_PinnedContext(),
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
