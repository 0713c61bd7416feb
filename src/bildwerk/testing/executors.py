"""The contract every executor passes (``bildwerk.executors`` entry points).

The task functions live here, at module level, so worker processes (or a cluster) can
import them by name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from bildwerk.executors.base import (
    ExecEvent,
    Executor,
    FifoQueue,
    Task,
    TaskDone,
    TaskFailed,
    TaskStarted,
)
from bildwerk.registry import executors


class ContractTaskError(RuntimeError):
    """Raised on purpose by :func:`fail_task`."""


def digest_task(value: int) -> str:
    """A result that depends only on the argument (never on the worker)."""
    return hashlib.sha256(f"contract {value}".encode()).hexdigest()[:16]


def add_task(a: int, b: int) -> int:
    return a + b


def fail_task(message: str) -> None:
    raise ContractTaskError(message)


def _task(id: str, fn: Callable[..., Any], *args: Any) -> Task:
    return Task(id=id, stage="contract", fn=fn, args=args, subject={"handle": id})


React = Callable[[ExecEvent], Iterable[Task]]


def run_all(executor: Executor, tasks: Iterable[Task], react: React | None = None) -> list[Any]:
    """Drive ``executor`` as the runner does: react to each event before it resumes,
    pushing new tasks onto the same queue."""
    queue = FifoQueue(tasks)
    events: list[Any] = []
    for event in executor.run(queue):
        events.append(event)
        for task in react(event) if react else ():
            queue.push(task)
    return events


def outcomes(events: list[Any]) -> dict[str, Any]:
    """Each task's outcome by id: its result, or the error's type and message."""
    out: dict[str, Any] = {}
    for event in events:
        if isinstance(event, TaskDone):
            out[event.task.id] = ("done", event.result)
        elif isinstance(event, TaskFailed):
            out[event.task.id] = ("failed", type(event.error).__name__, str(event.error))
    return out


class ExecutorContract:
    """Tests every :class:`~bildwerk.executors.base.Executor` must pass.

    Subclass it in a ``Test…`` class, set :attr:`registered_name` and implement
    :meth:`make_executor`. The contract never closes what it is given: return a shared
    executor (a warm pool) and close it in your own fixture::

        class TestMyExecutor(ExecutorContract):
            registered_name = "mine"            # its name in ``bildwerk.executors``
            def make_executor(self, workers): return pools[workers]

    Every task yields one start and then exactly one done-or-failed event carrying the
    task that was pushed (its ``subject`` intact); results equal ``fn(*args)``; a task
    that raises yields :class:`TaskFailed` with the exception and its traceback while the
    others complete; tasks pushed in reaction to an event run too; and how many workers
    run them never changes any result.
    """

    registered_name: ClassVar[str] = ""
    worker_counts: ClassVar[tuple[int, ...]] = (1, 2)

    def make_executor(self, workers: int) -> Executor:
        raise NotImplementedError

    def _executor(self) -> Executor:
        return self.make_executor(max(self.worker_counts))

    def test_name_and_protocol(self) -> None:
        executor = self._executor()
        assert isinstance(executor, Executor)
        assert executor.name == self.registered_name
        assert isinstance(executor.workers, int) and executor.workers >= 1
        factory = executors.load(self.registered_name)
        if isinstance(factory, type):
            assert isinstance(executor, factory), f"'{self.registered_name}' names {factory}"

    def test_each_task_starts_once_and_ends_once(self) -> None:
        tasks = [_task(f"t{i}", digest_task, i) for i in range(6)]
        events = run_all(self._executor(), tasks)
        for task in tasks:
            mine = [(i, e) for i, e in enumerate(events) if e.task.id == task.id]
            starts = [i for i, e in mine if isinstance(e, TaskStarted)]
            ends = [(i, e) for i, e in mine if isinstance(e, TaskDone | TaskFailed)]
            assert len(starts) == 1 and len(ends) == 1, f"{task.id}: {mine}"
            end_at, end = ends[0]
            assert starts[0] < end_at, f"{task.id} ended before it started"
            assert isinstance(end, TaskDone), end
            assert end.task is task, "events carry the task that was pushed"
            assert end.task.subject == {"handle": task.id}
            assert end.result == digest_task(*task.args)
            assert isinstance(end.seconds, float) and end.seconds >= 0.0
        assert len(events) == 2 * len(tasks)

    def test_a_failing_task_is_reported_and_the_others_finish(self) -> None:
        tasks = [
            _task("before", add_task, 1, 2),
            _task("boom", fail_task, "contract failure 7"),
            _task("after", add_task, 3, 4),
        ]
        events = run_all(self._executor(), tasks)
        (failed,) = [e for e in events if isinstance(e, TaskFailed)]
        assert failed.task is tasks[1]
        assert isinstance(failed.error, ContractTaskError)
        assert "contract failure 7" in str(failed.error)
        assert isinstance(failed.traceback, str)
        assert "fail_task" in failed.traceback and "contract failure 7" in failed.traceback
        assert outcomes(events)["before"] == ("done", 3)
        assert outcomes(events)["after"] == ("done", 7)

    def test_tasks_pushed_while_running_run_too(self) -> None:
        def react(event: ExecEvent) -> list[Task]:
            if not isinstance(event, TaskDone):
                return []
            if event.task.id == "root":  # fan out
                return [_task(f"leaf{i}", add_task, event.result, i) for i in range(3)]
            if event.task.id.startswith("chain") and event.result < 4:
                # pushed when nothing else is pending: the executor must look again
                return [_task(f"chain{event.result + 1}", add_task, event.result, 1)]
            return []

        events = run_all(
            self._executor(),
            [_task("root", add_task, 10, 0), _task("chain0", add_task, 0, 0)],
            react,
        )
        got = outcomes(events)
        assert got == {
            "root": ("done", 10),
            "leaf0": ("done", 10),
            "leaf1": ("done", 11),
            "leaf2": ("done", 12),
            "chain0": ("done", 0),
            "chain1": ("done", 1),
            "chain2": ("done", 2),
            "chain3": ("done", 3),
            "chain4": ("done", 4),
        }

    def test_worker_count_never_changes_results(self) -> None:
        def workload() -> list[Task]:
            tasks = [_task(f"d{i}", digest_task, i) for i in range(8)]
            tasks.insert(3, _task("boom", fail_task, "same everywhere"))
            return tasks

        seen = {n: outcomes(run_all(self.make_executor(n), workload())) for n in self.worker_counts}
        first = seen[self.worker_counts[0]]
        assert len(first) == 9 and first["boom"][0] == "failed"
        for n, got in seen.items():
            assert got == first, f"{n} workers gave other results"
