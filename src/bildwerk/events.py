"""Events streamed by a run. The CLI's progress bars consume them; so can a web UI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class StageStarted:
    stage: str
    total: int


@dataclass(frozen=True)
class StageProgress:
    stage: str
    advance: int = 1
    job_id: str | None = None


@dataclass(frozen=True)
class JobFailed:
    stage: str
    job_id: str
    error: str


@dataclass(frozen=True)
class Message:
    text: str


Event = StageStarted | StageProgress | JobFailed | Message
EventSink = Callable[[Event], None]


def ignore(_event: Event) -> None:
    return None
