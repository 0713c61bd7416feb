"""Each pool worker runs one BLAS/OpenMP thread: N workers use N cores, not N × cores.

The variables must reach the worker before numpy loads there, so the test checks inside
a real spawned worker with threadpoolctl, after numpy is imported."""

from __future__ import annotations

import os
from typing import Any

import pytest

from bildwerk.executors.base import FifoQueue, Task, TaskDone
from bildwerk.executors.local import THREAD_VARS, ProcessExecutor, single_threaded_environ


def blas_pools() -> dict[str, Any]:
    """Runs in the worker: the thread pools numpy (and anything else loaded) uses."""
    import numpy as np
    from threadpoolctl import threadpool_info

    np.ones((64, 64)) @ np.ones((64, 64))  # the BLAS pool is live
    return {
        "pid": os.getpid(),
        "pools": [(p["internal_api"], p["num_threads"]) for p in threadpool_info()],
        "environ": {var: os.environ.get(var) for var in THREAD_VARS},
    }


def test_every_worker_pool_has_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    pool = ProcessExecutor(2)
    try:
        queue = FifoQueue(Task(f"t{i}", "probe", blas_pools) for i in range(4))
        results = [e.result for e in pool.run(queue) if isinstance(e, TaskDone)]
    finally:
        pool.close()
    assert len(results) == 4
    assert all(r["pools"] for r in results), "numpy loaded no BLAS pool in the worker"
    for r in results:
        assert all(n == 1 for _, n in r["pools"]), r["pools"]
        assert r["environ"] == dict.fromkeys(THREAD_VARS, "1")
    # the parent's own environment is left as it was
    assert not any(var in os.environ for var in THREAD_VARS)


def test_explicit_user_setting_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    with single_threaded_environ() as env:
        assert env["OMP_NUM_THREADS"] == "3" and env["MKL_NUM_THREADS"] == "1"
        assert os.environ["MKL_NUM_THREADS"] == "1"
    assert os.environ["OMP_NUM_THREADS"] == "3" and "MKL_NUM_THREADS" not in os.environ
