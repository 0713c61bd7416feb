"""The executor protocol: where tasks run, reported as a stream of events.

``Executor.run(queue)`` pulls ready tasks from the caller's queue, runs them, and yields
one event per start, finish or failure, in the order they happen (dagster's shape). The
caller reacts to each event before the executor resumes — storing a result, pushing the
tasks it unblocks onto the same queue — so pipelined stages need no callbacks, and the
same loop drives an inline run, a local process pool or a Ray cluster. Which worker ran
a task never changes its result: tasks take and return plain data and blob digests.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Resources:
    """What one task needs from a worker: a scheduler that knows about resources (Ray)
    places it accordingly; the local pool runs one task per worker process."""

    cpu: float = 1.0
    gpu: float = 0.0
    memory_mb: int = 0


@dataclass(frozen=True)
class Task:
    """One call to run somewhere: ``fn(*args)`` with a module-level ``fn`` and picklable
    ``args``. ``subject`` is the caller's handle for it and never leaves this process."""

    id: str
    stage: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    resources: Resources = field(default_factory=Resources)
    subject: Any = field(default=None, compare=False)


class TaskQueue(Protocol):
    """Ready tasks in the order the caller wants them run."""

    def __bool__(self) -> bool: ...

    def pop(self) -> Task: ...


class FifoQueue:
    """Tasks in the order they were pushed."""

    def __init__(self, tasks: Iterable[Task] = ()) -> None:
        self._tasks = deque(tasks)

    def __bool__(self) -> bool:
        return bool(self._tasks)

    def push(self, task: Task) -> None:
        self._tasks.append(task)

    def pop(self) -> Task:
        return self._tasks.popleft()


@dataclass(frozen=True)
class TaskStarted:
    task: Task


@dataclass(frozen=True)
class TaskDone:
    task: Task
    result: Any
    seconds: float


@dataclass(frozen=True)
class TaskFailed:
    task: Task
    error: BaseException
    traceback: str


ExecEvent = TaskStarted | TaskDone | TaskFailed


@runtime_checkable
class Executor(Protocol):
    """Runs tasks and streams what happened. ``workers`` bounds how many run at once;
    ``close`` releases the workers (a long-lived pool may outlive several runs)."""

    name: str
    workers: int

    def run(self, queue: TaskQueue) -> Iterator[ExecEvent]: ...

    def close(self) -> None: ...
