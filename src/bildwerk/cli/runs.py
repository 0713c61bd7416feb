"""Runs: list, show, watch, cancel."""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from bildwerk.errors import UserError

if TYPE_CHECKING:  # heavy (SQLAlchemy, numpy, Pillow): imported by the commands that run
    pass

from bildwerk.cli.common import (
    JsonOpt,
    WorkspaceOpt,
    _actor,
    _print_json,
    _report,
    _table,
    _ws,
    out,
    runs_app,
)


@runs_app.command("cancel")
def runs_cancel(
    run_id: str,
    workspace: WorkspaceOpt = None,
    by: Annotated[str | None, typer.Option(help="Who cancels.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Cancel a queued run, or stop a running one between tasks (finished creatives stay)."""
    row = _ws(workspace).cancel(run_id, actor=_actor(by))
    text = (
        f"run {row['run_id']} cancelled"
        if row["status"] == "cancelled"
        else f"run {row['run_id']} asked to stop; it ends at its next task"
    )
    _report(as_json, row, text)


@runs_app.command("list")
def runs_list(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Recent runs, newest first."""
    rows = _ws(workspace).runs_summary()
    if as_json:
        _print_json(rows)
        return
    counts = ("planned", "generated", "cached", "failed")
    _table(
        ("run", "campaign", "status", *counts, "started"),
        (
            (r["id"], r["campaign_id"], r["status"], *(str(r[c]) for c in counts), r["started_at"])
            for r in rows
        ),
    )


@runs_app.command("watch")
def runs_watch(
    run_id: Annotated[
        str, typer.Argument(help="A run id (or prefix, or 'latest'), or a stream id.")
    ],
    workspace: WorkspaceOpt = None,
    timeout: Annotated[
        float | None, typer.Option(help="Stop after this many seconds without the run ending.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON event per line.")] = False,
) -> None:
    """Show a run's progress from its first event, then follow it until it ends (works
    from another terminal or machine on the same catalog)."""
    from bildwerk.events import EventSink, replay
    from bildwerk.progress import json_lines, progress_bars

    ws = _ws(workspace)
    stream = ws.stream_id(run_id)
    with contextlib.ExitStack() as stack:
        sink: EventSink = (
            json_lines(sys.stdout) if as_json else stack.enter_context(progress_bars(out))
        )
        ended = False
        for event in replay(ws.db, stream, follow=True, timeout=timeout):
            sink(event)
            ended = event.kind == "run.finished"
    if not ended:
        raise UserError(
            f"{stream} had not finished after {timeout} s", hint="run 'bildwerk runs watch' again"
        )


@runs_app.command("show")
def runs_show(run_id: str, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """One run: its counts and every job's outcome (failures with the reason)."""
    info = _ws(workspace).run_info(run_id)
    if as_json:
        _print_json(info)
        return
    jobs = info["jobs"]
    failed = [j for j in jobs if j["status"] == "failed"]
    refused = [j for j in jobs if j["status"] == "refused"]
    out.print(
        f"run [bold]{info['id']}[/] · {info['campaign_id']} · {info['status']} · "
        f"{info['generated']} generated, {info['cached']} cached, {info['failed']} failed, "
        f"{len(refused)} refused"
    )
    if info.get("manifest_path"):
        out.print(f"manifest: {info['manifest_path']}")
    if info.get("error"):
        out.print(f"[red]{info['error']}[/]")
    for j in failed:
        out.print(f"[red]✗[/] {j['job_key'][:16]}: {j['error']}")
    for j in refused:
        out.print(f"[yellow]⊘[/] {j['job_key'][:16]} refused: {j['error']}")
