"""Every built-in executor passes the executor contract of ``bildwerk.testing``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bildwerk.executors.base import Executor
from bildwerk.executors.local import InlineExecutor, ProcessExecutor
from bildwerk.testing import ExecutorContract

pytestmark = pytest.mark.timeout(120)


class TestInline(ExecutorContract):
    registered_name = "inline"
    worker_counts = (1,)

    def make_executor(self, workers: int) -> Executor:
        return InlineExecutor(workers)


@pytest.fixture(scope="module")
def pools() -> Iterator[dict[int, ProcessExecutor]]:
    """Own pools (not the process-wide warm ones), started once for the module."""
    made = {n: ProcessExecutor(n) for n in (1, 2)}
    yield made
    for pool in made.values():
        pool.close()


class TestProcess(ExecutorContract):
    registered_name = "process"
    worker_counts = (1, 2)

    @pytest.fixture(autouse=True)
    def _pools(self, pools: dict[int, ProcessExecutor]) -> None:
        self.pools = pools

    def make_executor(self, workers: int) -> Executor:
        return self.pools[workers]
