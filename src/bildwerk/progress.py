"""Progress bars fed by a run's event stream: the same view for ``bildwerk run`` (live)
and ``bildwerk runs watch`` (replayed from the catalog, then followed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bildwerk.events import Event, EventSink


class ProgressView:
    """One bar per stage; failures and messages printed above the bars."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.bars: dict[str, TaskID] = {}

    def __call__(self, event: Event) -> None:
        console = self.progress.console
        if event.kind == "stage.started" and event.stage:
            self.bars[event.stage] = self.progress.add_task(event.stage, total=event.total)
        elif event.kind == "job.finished" and event.stage in self.bars:
            self.progress.advance(self.bars[event.stage])
        elif event.kind == "job.failed":
            console.print(f"[red]✗[/] {event.job}: {escape(event.message or '')}")
            if event.stage in self.bars:
                self.progress.advance(self.bars[event.stage])
        elif event.kind in ("message", "run.started") and event.message:
            console.print(escape(event.message))
        elif event.kind == "run.finished" and event.message:
            console.print(f"[red]✗[/] {escape(event.message)}")


@contextmanager
def progress_bars(console: Console) -> Iterator[ProgressView]:
    columns = (
        TextColumn("{task.description:>9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(
        *columns, console=console, transient=False, disable=not console.is_terminal
    ) as progress:
        yield ProgressView(progress)


def json_lines(fh: IO[str]) -> EventSink:
    """A sink writing each event as one JSON line (for machines, tests and logs)."""

    def write(event: Event) -> None:
        fh.write(json.dumps(event.to_json(), ensure_ascii=False) + "\n")
        fh.flush()

    return write


def tee(*sinks: EventSink) -> EventSink:
    def send(event: Event) -> None:
        for sink in sinks:
            sink(event)

    return send
