"""The line: init, plan, run, submit, worker, qa, report."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

if TYPE_CHECKING:  # heavy (SQLAlchemy, numpy, Pillow): imported by the commands that run
    pass

from bildwerk.cli.common import (
    JsonOpt,
    WorkspaceOpt,
    _actor,
    _governed,
    _print_json,
    _progress,
    _report,
    _ws,
    app,
    err,
    out,
)

FIRST_REASONS = 3  # failures and refusals listed in a run's summary; the rest via runs show


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Folder to create the workspace in.")],
    name: Annotated[str | None, typer.Option(help="Brand name (default: folder name).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing workspace's samples.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Scaffold a workspace: bildwerk.yaml, brand kit, sample products, example campaign."""
    from bildwerk.scaffold import init_workspace

    root = init_workspace(path, name=name, force=force)
    if as_json:
        _print_json({"workspace": str(root), "brief": str(root / "campaigns/summer-sale.yaml")})
        return
    out.print(f"[green]✓[/] workspace ready at [bold]{root}[/]")
    out.print(f"  next: bildwerk -w {root} run {root / 'campaigns/summer-sale.yaml'}")


@app.command()
def plan(
    brief: Annotated[Path, typer.Argument(help="Campaign brief (YAML).")],
    workspace: WorkspaceOpt = None,
    backend: Annotated[str | None, typer.Option(help="Override the brief's backend.")] = None,
    model: Annotated[str | None, typer.Option(help="Override the brief's model.")] = None,
    workers: Annotated[int | None, typer.Option(min=1)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Dry run: the variant matrix, counts per channel/segment/locale, estimated time."""
    summary = _ws(workspace, brief).plan(brief, backend=backend, model=model, workers=workers)
    p = summary.plan
    data = summary.to_json()
    if as_json:
        _print_json(data)
        return
    out.print(
        f"[bold]{len(p.jobs)}[/] creatives from {len(p.scenes())} scenes "
        f"({p.strategy} design of {p.full_matrix} possible); "
        f"{summary.cached} cached, {summary.todo} to make, "
        f"≈{summary.estimated_seconds:.0f} s on {summary.workers} worker(s)"
    )
    for dim in ("channel", "segment", "locale"):
        table = Table(title=f"per {dim}", title_justify="left")
        table.add_column(dim)
        table.add_column("creatives", justify="right")
        for k, v in p.counts(dim).items():
            table.add_row(k, str(v))
        out.print(table)


@app.command()
def run(
    brief: Annotated[Path, typer.Argument(help="Campaign brief (YAML).")],
    workspace: WorkspaceOpt = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default: all cores).")
    ] = None,
    backend: Annotated[str | None, typer.Option(help="Override the brief's backend.")] = None,
    model: Annotated[str | None, typer.Option(help="Override the brief's model.")] = None,
    event_log: Annotated[
        Path | None,
        typer.Option(help="Also write every event of the run to this file, one JSON per line."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the whole line: plan, generate, compose, render, catalog, manifest, report."""
    from bildwerk.events import EventSink
    from bildwerk.progress import json_lines, progress_bars, tee

    ws = _ws(workspace, brief)
    console = err if as_json else out
    with contextlib.ExitStack() as stack:
        view = stack.enter_context(progress_bars(console))
        sink: EventSink = view
        if event_log is not None:
            fh = stack.enter_context(event_log.open("w", encoding="utf-8"))
            sink = tee(view, json_lines(fh))
        result = ws.run(brief, workers=workers, backend=backend, model=model, on_event=sink)
    summary = {
        "run_id": result.run_id,
        "manifest": str(result.manifest),
        "report": str(result.report),
        "planned": result.planned,
        "generated": result.generated,
        "cached": result.cached,
        "failed": result.failed,
        "refused": result.refused,
        "errors": result.errors,
        "refusals": result.refusals,
    }
    if as_json:
        _print_json(summary)
    else:
        mark = "[green]✓[/]"  # ✓ only when every planned creative was made
        if result.failed or result.refused:
            mark = "[yellow]![/]" if result.generated + result.cached else "[red]✗[/]"
        out.print(
            f"{mark} run [bold]{result.run_id}[/]: {result.generated} generated, "
            f"{result.cached} cached, {result.failed} failed, {result.refused} refused"
        )
        for what, reasons in (("failed", result.errors), ("refused", result.refusals)):
            for job_id, reason in list(reasons.items())[:FIRST_REASONS]:
                out.print(f"  {what}: {job_id}: {reason.splitlines()[0] if reason else '?'}")
            if len(reasons) > FIRST_REASONS:
                out.print(f"  … and {len(reasons) - FIRST_REASONS} more {what}")
        out.print(f"  manifest: {result.manifest}\n  report:   {result.report}")
        if result.failed or result.refused:
            out.print(f"  details: bildwerk runs show {result.run_id}")
    if result.failed or result.refused:
        raise typer.Exit(1)  # the run happened and reports failed or refused jobs


@app.command()
def submit(
    brief: Annotated[Path, typer.Argument(help="Campaign brief (YAML).")],
    workspace: WorkspaceOpt = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes for it.")] = None,
    backend: Annotated[str | None, typer.Option(help="Override the brief's backend.")] = None,
    model: Annotated[str | None, typer.Option(help="Override the brief's model.")] = None,
    by: Annotated[str | None, typer.Option(help="Who submits.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a brief and queue its run for 'bildwerk worker' (queued runs survive restarts)."""
    ws = _ws(workspace, brief)
    row = ws.submit(brief, workers=workers, backend=backend, model=model, actor=_actor(by),
                    governed=_governed(ws, by))  # fmt: skip
    _report(
        as_json,
        row,
        f"[green]✓[/] queued run [bold]{row['run_id']}[/] ({row['planned']} creatives); "
        f"a 'bildwerk worker' runs it — follow it with 'bildwerk runs watch {row['run_id']}'",
    )


@app.command()
def worker(
    workspace: WorkspaceOpt = None,
    once: Annotated[bool, typer.Option(help="Stop when the queue is empty.")] = False,
    max_runs: Annotated[int | None, typer.Option(min=1, help="Stop after this many runs.")] = None,
    poll: Annotated[float, typer.Option(min=0.1, help="Seconds between queue checks.")] = 2.0,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes per run (default: the run's).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Claim queued runs (and runs whose worker died) and run them, one at a time."""
    from bildwerk.progress import progress_bars

    ws = _ws(workspace)

    def said(run_id: str, status: str) -> None:
        if not as_json:
            err.print(f"run {run_id}: {status}")

    with progress_bars(err) as view:
        done = ws.work(
            once=once, max_runs=max_runs, poll=poll, workers=workers, on_event=view, on_run=said
        )
    _report(as_json, done, f"[green]✓[/] {len(done)} run(s) processed")


@app.command("qa")
def qa_cmd(
    run_id: str,
    workspace: WorkspaceOpt = None,
    workers: Annotated[int | None, typer.Option(min=1)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-run every QA check on a run's creatives and gate them again."""
    ws = _ws(workspace)
    with _progress(as_json) as view:
        result = ws.qa(run_id, workers=workers, on_event=view)
    if as_json:
        _print_json(result)
    else:
        out.print(
            f"[green]✓[/] re-checked {result['checked']} creatives of {result['run_id']}; "
            f"see 'bildwerk review {result['run_id']}'"
        )


@app.command()
def report(run_id: str, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Path of a run's HTML contact sheet."""
    path = _ws(workspace).report_path(run_id)
    if as_json:
        _print_json({"report": str(path)})
    else:
        out.print(str(path))
