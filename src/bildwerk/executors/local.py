"""Local executors: inline (one worker, no subprocess) and a long-lived process pool
that keeps models warm between runs."""

from __future__ import annotations

import ast
import atexit
import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

from bildwerk import netguard
from bildwerk.executors.base import (
    ExecEvent,
    Executor,
    Task,
    TaskDone,
    TaskFailed,
    TaskQueue,
    TaskStarted,
)


class InlineExecutor:
    """Runs each task in this process, one at a time; used for ``--workers 1``."""

    name = "inline"

    def __init__(self, workers: int = 1) -> None:
        self.workers = 1

    def run(self, queue: TaskQueue) -> Iterator[ExecEvent]:
        while queue:
            task = queue.pop()
            yield TaskStarted(task)
            started = time.perf_counter()
            try:
                result = task.fn(*task.args)
            except Exception as exc:  # the caller decides what a failure means
                yield TaskFailed(task, exc, traceback.format_exc())
            else:
                yield TaskDone(task, result, time.perf_counter() - started)

    def close(self) -> None:
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


def _die_with_parent(parent: int) -> None:
    """A worker never outlives the process that started it (a killed or terminated run
    must not leave workers generating for nobody): on Linux the kernel sends SIGKILL
    when the parent dies; elsewhere a watcher thread notices the parent is gone."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(1, signal.SIGKILL) == 0 and os.getppid() == parent:  # PR_SET_PDEATHSIG
                return
            # the parent may have died before prctl took effect: handled below

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _worker_init(parent: int) -> None:
    _die_with_parent(parent)
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


def _timed(
    fn: Callable[..., Any], args: tuple[Any, ...], network: str | None = None
) -> tuple[Any, float]:
    """Runs in the worker: the result and how long the call took there. ``network`` is
    the parent's network policy (:mod:`bildwerk.netguard`) at submit time: a warm worker
    outlives the workspace whose settings it started with."""
    if network is not None:
        netguard.configure(netguard.NetPolicy.from_json(network))
    started = time.perf_counter()
    return fn(*args), time.perf_counter() - started


class ProcessExecutor:
    """A long-lived pool of worker processes (spawned, so it behaves the same on every
    OS), each with one BLAS/OpenMP thread. Workers keep what they loaded — backends,
    QA models, fonts — between runs: get one with :func:`warm_pool`."""

    name = "process"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=_PinnedContext(),
            initializer=_worker_init,
            initargs=(os.getpid(),),
        )

    @property
    def broken(self) -> bool:
        return bool(getattr(self._pool, "_broken", False))

    def run(self, queue: TaskQueue) -> Iterator[ExecEvent]:
        if self.broken:  # a worker died in an earlier run: start fresh workers
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
        # A couple of tasks beyond the worker count keep workers busy while the caller
        # stores results; no more, so memory stays bounded and work drains depth-first.
        cap = self.workers + 2
        pending: dict[Future[tuple[Any, float]], Task] = {}
        try:
            while queue or pending:
                while queue and len(pending) < cap:
                    task = queue.pop()
                    network = netguard.current_policy().to_json()
                    pending[self._pool.submit(_timed, task.fn, task.args, network)] = task
                    yield TaskStarted(task)
                finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for fut in finished:
                    task = pending.pop(fut)
                    exc = fut.exception()
                    if exc is not None:
                        tb = "".join(traceback.format_exception(exc))
                        yield TaskFailed(task, exc, tb)
                    else:
                        result, seconds = fut.result()
                        yield TaskDone(task, result, seconds)
        finally:
            for fut in pending:
                fut.cancel()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def shutdown(self) -> None:
        self.close()


_POOLS: dict[int, ProcessExecutor] = {}
_POOLS_LOCK = threading.Lock()


def warm_pool(workers: int) -> ProcessExecutor:
    """This process's pool of ``workers`` workers, started once and reused by every run,
    QA re-run and reproduction after it, so models load once per worker."""
    with _POOLS_LOCK:
        pool = _POOLS.get(workers)
        if pool is None:
            pool = _POOLS[workers] = ProcessExecutor(workers)
            if len(_POOLS) == 1:
                atexit.register(close_pools)
        return pool


def close_pools() -> None:
    """Stop every warm pool (at exit, or to free the memory its workers hold)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def make_executor(workers: int, name: str | None = None) -> Executor:
    """The executor for ``workers`` (inline for one, the warm process pool for more), or
    the one registered as ``name`` (``bildwerk.executors`` entry points)."""
    if name is not None and name not in ("inline", "process"):
        from bildwerk.registry import executors

        made: Executor = executors.create(name, workers)
        return made
    if workers <= 1 or name == "inline":
        return InlineExecutor()
    if main_reruns_in_workers():
        warnings.warn(
            f"running on 1 worker instead of {workers}: {sys.modules['__main__'].__file__} "
            "has no 'if __name__ == \"__main__\":' guard, so every spawned worker would run "
            "it again; put the script's code under such a guard to use the worker pool",
            RuntimeWarning,
            stacklevel=2,
        )
        return InlineExecutor()
    return warm_pool(workers)


def main_reruns_in_workers() -> bool:
    """Whether a spawned worker would run this program's top-level code again: the main
    module is a plain script (not ``-m``, not interactive) without a ``__name__`` guard,
    like the README's three-line example copied into a file."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or getattr(main, "__spec__", None) is not None or not path:
        return False
    try:
        with open(path, "rb") as fh:
            tree = ast.parse(fh.read())
    except (OSError, SyntaxError, ValueError):
        return True  # cannot tell: the inline executor is always safe
    return not any(isinstance(node, ast.If) and _is_main_test(node.test) for node in tree.body)


def _is_main_test(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return False
    sides = [test.left, *test.comparators]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    mains = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return bool(names and mains) and isinstance(test.ops[0], ast.Eq)
