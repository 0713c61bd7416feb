"""Command line: parses, calls the Workspace API, prints. Errors raised on purpose print
without a traceback and exit with their code (user errors 2, unreachable services 3)."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bildwerk.errors import BildwerkError, UserError, WorkspaceError

if TYPE_CHECKING:  # heavy (SQLAlchemy, numpy, Pillow): imported by the commands that run
    from bildwerk.progress import ProgressView
    from bildwerk.workspace import Workspace

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="bildwerk: brief in, branded and reproducible image variants out.",
)
runs_app = typer.Typer(no_args_is_help=True, help="What ran, what was cached, what failed.")
assets_app = typer.Typer(no_args_is_help=True, help="Catalog queries and imports.")
app.add_typer(runs_app, name="runs")
app.add_typer(assets_app, name="assets")
models_app = typer.Typer(no_args_is_help=True, help="Registered model weights.")
app.add_typer(models_app, name="models")
keys_app = typer.Typer(no_args_is_help=True, help="Content Credentials signing keys.")
app.add_typer(keys_app, name="keys")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        help="Workspace folder (default: $BILDWERK_WORKSPACE or "
        "the nearest parent holding bildwerk.yaml).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


@contextlib.contextmanager
def _progress(as_json: bool) -> Iterator[ProgressView]:
    """The progress view ``run`` shows, fed by an operation's event stream (on stderr
    when stdout carries JSON)."""
    from bildwerk.progress import progress_bars

    with progress_bars(err if as_json else out) as view:
        yield view


def _ws(path: Path | None, near: Path | None = None) -> Workspace:
    """--workspace, else $BILDWERK_WORKSPACE, else the current folder's or the brief's
    nearest ancestor holding bildwerk.yaml."""
    from bildwerk.workspace import Workspace, find_root

    if path is None and near is not None:
        try:
            return Workspace(find_root())
        except WorkspaceError:
            return Workspace(find_root(near.resolve().parent))
    return Workspace(path)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


def _report(as_json: bool, data: Any, text: str) -> None:
    """JSON for machines, one line of Rich markup for people."""
    if as_json:
        _print_json(data)
    else:
        out.print(text)


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
    data = {
        "variants": len(p.jobs),
        "scenes": len(p.scenes()),
        "cached": summary.cached,
        "to_make": summary.todo,
        "full_matrix": p.full_matrix,
        "strategy": p.strategy,
        "estimated_seconds": round(summary.estimated_seconds, 1),
        "workers": summary.workers,
        "per_channel": p.counts("channel"),
        "per_segment": p.counts("segment"),
        "per_locale": p.counts("locale"),
        "jobs": [j.spec().to_json() for j in p.jobs],
    }
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
    }
    if as_json:
        _print_json(summary)
    else:
        out.print(
            f"[green]✓[/] run [bold]{result.run_id}[/]: {result.generated} generated, "
            f"{result.cached} cached, {result.failed} failed"
        )
        out.print(f"  manifest: {result.manifest}\n  report:   {result.report}")
    if result.failed:
        raise typer.Exit(1)


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
    row = _ws(workspace, brief).submit(
        brief, workers=workers, backend=backend, model=model, actor=_actor(by)
    )
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
    table = Table()
    for col in ("run", "campaign", "status", "planned", "generated", "cached", "failed", "started"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["id"],
            r["campaign_id"],
            r["status"],
            str(r["planned"]),
            str(r["generated"]),
            str(r["cached"]),
            str(r["failed"]),
            r["started_at"],
        )
    out.print(table)


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
    out.print(
        f"run [bold]{info['id']}[/] · {info['campaign_id']} · {info['status']} · "
        f"{info['generated']} generated, {info['cached']} cached, {info['failed']} failed"
    )
    if info.get("manifest_path"):
        out.print(f"manifest: {info['manifest_path']}")
    if info.get("error"):
        out.print(f"[red]{info['error']}[/]")
    for j in info["jobs"]:
        if j["status"] == "failed":
            out.print(f"[red]✗[/] {j['job_key'][:16]}: {j['error']}")


@assets_app.command("list")
def assets_list(
    workspace: WorkspaceOpt = None,
    kind: Annotated[
        str | None, typer.Option(help="product, logo, reference, scene, creative")
    ] = None,
    campaign: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1)] = 200,
    as_json: JsonOpt = False,
) -> None:
    """Assets in the catalog, newest first."""
    assets = _ws(workspace).assets(kind=kind, campaign=campaign, limit=limit)
    if as_json:
        _print_json(
            [
                {
                    "id": a.id,
                    "kind": a.kind,
                    "sha256": a.sha256,
                    "width": a.width,
                    "height": a.height,
                    "campaign": a.campaign_id,
                }
                for a in assets
            ]
        )
        return
    table = Table()
    for col in ("id", "kind", "size", "campaign", "sha256"):
        table.add_column(col)
    for a in assets:
        table.add_row(a.id, a.kind, f"{a.width}×{a.height}", a.campaign_id or "", a.sha256[:12])
    out.print(table)


@assets_app.command("show")
def assets_show(asset_id: str, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """One asset with its renditions and lineage."""
    info = _ws(workspace).asset_info(asset_id)
    if as_json:
        _print_json(info)
        return
    out.print(
        f"[bold]{info['id']}[/] {info['kind']} {info['width']}×{info['height']} "
        f"sha256 {info['sha256']}\n  file: {info['path']}"
    )
    for r in info["renditions"]:
        out.print(
            f"  {r['format']:5} {r['width']:>5}×{r['height']:<5} {r['bytes']:>8} B  "
            f"q{r['quality']}{'' if r['within_budget'] else '  [red]over budget[/]'}"
        )
    for link in info["lineage"]:
        out.print(f"  {link['child_id']} ← {link['relation']} ← {link['parent_id']}")


@assets_app.command("import")
def assets_import(
    files: Annotated[list[Path], typer.Argument(help="Image files.")],
    kind: Annotated[str, typer.Option(help="product, logo or reference")] = "product",
    first_frame: Annotated[
        bool, typer.Option(help="Take the first frame of animated images instead of refusing them.")
    ] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validated ingest: orientation, colour space, transparency and size are checked."""
    rows = _ws(workspace).import_assets(files, kind=kind, first_frame=first_frame)
    if as_json:
        _print_json(rows)
        return
    for r in rows:
        state = "imported" if r["created"] else "already in catalog"
        out.print(f"[green]✓[/] {r['id']} {r['width']}×{r['height']} ({state}) ← {r['source']}")


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


def _actor(by: str | None) -> str:
    return by or os.environ.get("BILDWERK_USER") or getpass.getuser()


@app.command()
def review(
    run_id: str,
    workspace: WorkspaceOpt = None,
    all_states: Annotated[
        bool, typer.Option("--all", help="Every decision, not just the queue.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """The review queue of a run: ranked creatives waiting for a person."""
    rows = _ws(workspace).review(run_id, all_states=all_states)
    if as_json:
        _print_json(rows)
        return
    table = Table()
    for col in ("id", "channel", "segment", "locale", "rank", "score", "state", "reasons"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["id"],
            r["channel"],
            r["segment"] or "",
            r["locale"] or "",
            str(r["rank"] or ""),
            f"{r['score']:.3f}" if r["score"] is not None else "",
            r["state"],
            "; ".join(r["reasons"]),
        )
    out.print(table)


@app.command()
def approve(
    asset_id: Annotated[str | None, typer.Argument(help="A creative id.")] = None,
    run: Annotated[
        str | None, typer.Option("--run", help="Approve this run's whole queue instead.")
    ] = None,
    include_review: Annotated[
        bool, typer.Option(help="With --run: also what the gate flagged for a person.")
    ] = False,
    include_unchecked: Annotated[
        bool,
        typer.Option(
            help="With --run: also creatives a QA check could not verify (missing extra, "
            "model not loadable); recorded as an override."
        ),
    ] = False,
    workspace: WorkspaceOpt = None,
    by: Annotated[
        str | None, typer.Option(help="Who approves (default: $BILDWERK_USER or the login name).")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Note recorded with it.")] = None,
    override: Annotated[bool, typer.Option(help="Approve a creative the gate rejected.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Approve a creative (ID as in the run manifest); recorded with who and when."""
    if run is not None:
        if asset_id is not None:
            raise UserError("give a creative id or --run, not both")
        result = _ws(workspace).approve_run(
            run,
            actor=_actor(by),
            include_review=include_review,
            include_unchecked=include_unchecked,
            reason=reason,
        )
        text = f"[green]✓[/] {len(result.approved)} creative(s) approved by {_actor(by)}"
        if result.unchecked_left_out:
            text += (
                f"\n[yellow]![/] {len(result.unchecked_left_out)} creative(s) left out: a QA "
                "check could not verify them (see 'bildwerk review RUN --all'); install what "
                "the reasons name and run 'bildwerk qa RUN', or pass --include-unchecked"
            )
        _report(as_json, result.to_json(), text)
        return
    if asset_id is None:
        raise UserError("say what to approve", hint="bildwerk approve ID, or --run RUN")
    row = _ws(workspace).decide(
        asset_id, "approved", actor=_actor(by), reason=reason, override=override
    )
    _report(as_json, row, f"[green]✓[/] {row['id']} approved by {row['actor']}")


@app.command()
def reject(
    asset_id: str,
    reason: Annotated[str, typer.Option(help="Why (required).")],
    workspace: WorkspaceOpt = None,
    by: Annotated[str | None, typer.Option(help="Who rejects.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Reject a creative with a reason; recorded with who and when."""
    row = _ws(workspace).decide(asset_id, "rejected", actor=_actor(by), reason=reason)
    _report(as_json, row, f"[red]✗[/] {row['id']} rejected by {row['actor']}")


@app.command("reproduce")
def reproduce_cmd(asset_id: str, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Regenerate an asset from its record; exit 0 if bit-identical, 1 if pixels differ."""
    ws = _ws(workspace)
    with _progress(as_json) as view:
        result = ws.reproduce(asset_id, on_event=view)
    if as_json:
        _print_json(result.to_json())
    else:
        for label, cmp in (("scene", result.scene), ("master", result.master)):
            if cmp is None:
                continue
            if cmp.identical:
                out.print(f"[green]✓[/] {label} bit-identical")
            else:
                out.print(
                    f"[yellow]≠[/] {label} differs: max {cmp.max_abs_diff}/255, "
                    f"mean {cmp.mean_abs_diff:.3f}, PSNR {cmp.psnr_db:.1f} dB"
                )
        if result.note:
            out.print(result.note)
    if not result.identical:
        raise typer.Exit(1)


@app.command()
def report(run_id: str, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Path of a run's HTML contact sheet."""
    path = _ws(workspace).report_path(run_id)
    if as_json:
        _print_json({"report": str(path)})
    else:
        out.print(str(path))


@models_app.command("add")
def models_add(
    path: Annotated[Path, typer.Argument(help="A diffusers folder or a weights file.")],
    name: Annotated[str, typer.Option(help="Name used in briefs.")],
    kind: Annotated[
        str | None,
        typer.Option(
            help="checkpoint, lora, embedding, controlnet, upscaler or clip (default: detected)."
        ),
    ] = None,
    arch: Annotated[str | None, typer.Option(help="Override the detected architecture.")] = None,
    license: Annotated[str, typer.Option(help="Licence name or URL.")] = "",
    source: Annotated[str, typer.Option(help="Where the weights came from.")] = "",
    allowed_use: Annotated[list[str] | None, typer.Option(help="Allowed use (repeatable).")] = None,
    replace: Annotated[bool, typer.Option(help="Replace weights registered under NAME.")] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register local weights: hashes every weight file and detects the architecture."""
    row = _ws(workspace).add_model(
        path,
        name=name,
        kind=kind,
        architecture=arch,
        license=license,
        source=source,
        allowed_uses=tuple(allowed_use or ()),
        replace=replace,
    )
    if as_json:
        _print_json(row)
    else:
        out.print(
            f"[green]✓[/] {row['name']}: {row['kind']} {row['architecture']} "
            f"sha256 {row['sha256'][:12]}"
        )


@models_app.command("list")
def models_list(
    kind: Annotated[str | None, typer.Option()] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Registered models: name, kind, architecture, sha256, licence, size."""
    rows = _ws(workspace).models(kind)
    if as_json:
        _print_json(rows)
        return
    table = Table()
    for col in ("name", "kind", "architecture", "sha256", "licence", "size"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"],
            r["kind"],
            r["architecture"],
            r["sha256"][:12],
            r["license"],
            f"{r['size_bytes'] / 1e6:.1f} MB",
        )
    out.print(table)


@models_app.command("remove")
def models_remove(name: str, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Forget a registered model (its files stay where they are)."""
    row = _ws(workspace).remove_model(name)
    _report(as_json, row, f"removed {row['name']}")


@models_app.command("pull")
def models_pull(
    repo_id: Annotated[
        str, typer.Argument(help="Hugging Face Hub repository, e.g. stabilityai/sdxl-turbo.")
    ],
    name: Annotated[str | None, typer.Option()] = None,
    revision: Annotated[str | None, typer.Option()] = None,
    license: Annotated[str, typer.Option()] = "",
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Download a model from the Hugging Face Hub into the workspace and register it."""
    row = _ws(workspace).pull_model(repo_id, name=name, revision=revision, license=license)
    _report(as_json, row, f"[green]✓[/] {row['name']} from {repo_id}")


@keys_app.command("dev-init")
def keys_dev_init(
    workspace: WorkspaceOpt = None,
    force: Annotated[bool, typer.Option(help="Replace existing dev keys.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """A local test CA and signing certificate — NOT for production."""
    from bildwerk.publish.keys import dev_init

    ws = _ws(workspace)
    keys = dev_init(ws.root, org=ws.settings.name, force=force)
    row = {
        "chain": str(keys.chain),
        "key": str(keys.key),
        "trust_anchor": str(keys.root),
        "trust_settings": str(keys.trust_settings),
        "not_for_production": True,
    }
    if as_json:
        _print_json(row)
    else:
        out.print(f"[yellow]{escape(str(keys))}[/]")
        out.print(f"chain {keys.chain}\nkey   {keys.key}\ntrust anchor {keys.root}")


@keys_app.command("use")
def keys_use(
    cert: Annotated[Path, typer.Option(help="PEM certificate chain, leaf first.")],
    key: Annotated[Path | None, typer.Option(help="PEM private key of the leaf.")] = None,
    tsa: Annotated[str | None, typer.Option(help="RFC 3161 time-stamp authority URL.")] = None,
    callback: Annotated[
        str | None,
        typer.Option(help="module:function that signs bytes (KMS/HSM) instead of --key."),
    ] = None,
    alg: Annotated[str | None, typer.Option(help="With --callback: es256, ps256, ...")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign published files with these production credentials (checked first)."""
    if key is None and callback is None:
        raise UserError("keys use needs --key or --callback", hint="pass the leaf's private key")
    row = _ws(workspace).use_signer(cert, key, tsa_url=tsa, callback=callback, alg=alg)
    _report(as_json, row, f"[green]✓[/] signing as {row['subject']} until {row['not_after']}")
    for warning in row["warnings"]:
        err.print(f"[yellow]warning:[/] {escape(warning)}")


@app.command()
def publish(
    run_id: Annotated[
        str | None, typer.Argument(help="The run whose approved creatives to publish.")
    ] = None,
    to: Annotated[
        list[str] | None, typer.Option("--to", help="Target name from bildwerk.yaml (repeatable).")
    ] = None,
    sync: Annotated[
        bool, typer.Option("--sync", help="Take expired and revoked creatives off every target.")
    ] = False,
    by: Annotated[str | None, typer.Option(help="Who publishes (default: login name).")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stamp (metadata, Content Credentials) and publish approved creatives; --sync
    unpublishes what expired or was revoked."""
    ws = _ws(workspace)
    if sync:
        if run_id or to:
            raise UserError("--sync takes no RUN or --to", hint="run `bildwerk publish --sync`")
        with _progress(as_json) as view:
            done = ws.publisher(_actor(by), on_event=view).sync()
        total = sum(len(v) for v in done.removed.values())
        _report(
            as_json,
            {"removed": done.removed, "notified": done.notified, "events": done.events},
            f"[green]✓[/] sync: {total} creative(s) taken down"
            + "".join(f"\n  {t}: {', '.join(ids)}" for t, ids in done.removed.items()),
        )
        return
    if not run_id:
        raise UserError("say which run to publish", hint="bildwerk publish RUN --to site")
    with _progress(as_json) as view:
        result = ws.publisher(_actor(by), on_event=view).publish(run_id, to or [])
    if result.dev_keys:
        err.print(
            "[yellow]warning:[/] signed with the DEV keys from `bildwerk keys dev-init` "
            "(NOT FOR PRODUCTION); use `bildwerk keys use` for real credentials"
        )
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    data = {
        "run_id": result.run_id,
        "targets": result.targets,
        "published": result.published,
        "skipped": result.skipped,
        "uploaded": result.uploaded,
        "unchanged": result.unchanged,
        "stamped": result.stamped,
        "pages": result.pages,
        "dev_keys": result.dev_keys,
        "events": result.events,
    }
    text = (
        f"[green]✓[/] published {len(result.published)} creative(s) to "
        f"{', '.join(result.targets)}: {result.uploaded} file(s) uploaded, "
        f"{result.unchanged} unchanged, {result.stamped} stamped, "
        f"{len(result.skipped)} skipped"
        + "".join(f"\n  {t}: {url}" for t, url in result.pages.items() if url)
    )
    _report(as_json, data, text)


@app.command()
def rights(
    asset_id: str,
    expires: Annotated[
        str | None, typer.Option(help="Licence end date, YYYY-MM-DD; 'never' clears it.")
    ] = None,
    by: Annotated[str | None, typer.Option(help="Who changes it.")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set a creative's licence expiry; `publish --sync` enforces it."""
    import datetime as dt

    if expires is None:
        raise UserError("nothing to change", hint="pass --expires YYYY-MM-DD (or 'never')")
    try:
        date = None if expires == "never" else dt.date.fromisoformat(expires)
    except ValueError:
        raise UserError(
            f"--expires {expires!r} is not a date", hint="write it as 2027-06-30"
        ) from None
    row = (
        _ws(workspace)
        .publisher(_actor(by))
        .set_rights(asset_id, expires_on=date, clear_expiry=date is None)
    )
    _report(as_json, row, f"[green]✓[/] {asset_id}: licence expires {row['expires_on'] or 'never'}")


@app.command()
def revoke(
    asset_id: str,
    reason: Annotated[str, typer.Option(help="Why (required, recorded).")],
    by: Annotated[str | None, typer.Option(help="Who revokes.")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a creative's rights; `publish --sync` takes it down everywhere."""
    row = _ws(workspace).publisher(_actor(by)).set_rights(asset_id, revoke=reason)
    _report(as_json, row, f"[red]✗[/] {asset_id} revoked; run `bildwerk publish --sync`")


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="A published rendition.")],
    trust: Annotated[
        Path | None,
        typer.Option(
            help="Trust anchors (PEM) or c2pa settings "
            "JSON; default: the workspace's dev root "
            "if any."
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """C2PA validation state, manifest summary, watermark payload and key metadata."""
    from bildwerk.publish.inspect import verify_file

    anchors = trust
    try:
        ws: Workspace | None = _ws(workspace)
    except WorkspaceError:
        ws = None
    if anchors is None and ws is not None:
        candidate = ws.root / "keys" / "dev-root.pem"
        anchors = candidate if candidate.is_file() else None
    report = verify_file(
        file, trust_anchors=anchors, lookup=ws.creatives_marked if ws is not None else None
    )
    if as_json:
        _print_json(report)
        return
    c2pa = report["c2pa"]
    out.print(f"[bold]{file}[/] {report['format']} {report['width']}×{report['height']}")
    out.print(
        f"  C2PA: {c2pa.get('state')}"
        + (
            f" — {c2pa.get('title')} by {', '.join(c2pa.get('authors') or [])}"
            if c2pa.get("state") != "absent"
            else f" ({c2pa.get('reason')})"
        )
    )
    mark = report["watermark"]
    if mark:
        owner = f" → {mark['asset_id']} (match {mark['match']})" if mark.get("asset_id") else ""
        out.print(f"  watermark: {mark['hex']}{owner}")
    for key, value in report["xmp"].items():
        out.print(f"  {key}: {value}")


# --- catalog schema: bildwerk db ... -----------------------------------------------------

db_app = typer.Typer(no_args_is_help=True, help="The catalog's schema: status and upgrades.")
app.add_typer(db_app, name="db")


@db_app.command("status")
def db_status_cmd(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """The catalog's revision, the code's newest, and the migrations an upgrade applies."""
    from bildwerk.catalog.db import db_status

    st = db_status(_ws(workspace).catalog_url)
    if not st.known:
        state = "[red]ahead of this bildwerk[/]: upgrade bildwerk"
    elif st.current is None:
        state = "not created yet: 'bildwerk db upgrade' or any command creates it"
    elif st.up_to_date:
        state = "[green]up to date[/]"
    else:
        state = (
            f"[yellow]{len(st.pending)} pending[/] ({', '.join(st.pending)}): bildwerk db upgrade"
        )
    _report(
        as_json,
        st.to_json(),
        f"catalog {escape(st.url)}: revision {st.current or '-'}, head {st.head}; {state}",
    )


@db_app.command("upgrade")
def db_upgrade_cmd(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Apply pending migrations (creates the catalog if it is empty). Safe to run while
    other processes wait: they take the same lock."""
    from bildwerk.catalog.db import db_upgrade

    before, after = db_upgrade(_ws(workspace).catalog_url)
    data = {
        "url": after.url,
        "from": before.current,
        "to": after.current,
        "applied": list(before.pending),
    }
    text = (
        f"[green]✓[/] catalog {escape(after.url)} upgraded {before.current or 'empty'} → "
        f"{after.current} ({', '.join(before.pending)})"
        if before.pending
        else f"[green]✓[/] catalog {escape(after.url)} already at {after.current}"
    )
    _report(as_json, data, text)


def main() -> None:
    """Run the CLI; every :class:`BildwerkError` becomes its message and exit code (the
    table is in :mod:`bildwerk.errors`); anything else is a bug and keeps its traceback."""
    try:
        app()
    except BildwerkError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted; re-run the same command to resume")
        sys.exit(130)


@app.command("fsck")
def fsck_cmd(
    repair: Annotated[
        bool,
        typer.Option(
            "--repair", help="Sweep stale temp files and move corrupt blobs to quarantine."
        ),
    ] = False,
    prune_orphans: Annotated[
        bool,
        typer.Option(
            "--prune-orphans",
            help="Delete blobs no catalog row names, once older than an hour (with --repair).",
        ),
    ] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check every blob the catalog needs: missing, corrupt, orphaned, half-written.
    Exits 1 while problems remain (orphans only waste space and do not count)."""
    from bildwerk.fsck import fsck

    if prune_orphans and not repair:
        raise UserError("--prune-orphans deletes blobs", hint="add --repair to confirm")
    ws = _ws(workspace)
    report = fsck(ws.db, ws.blobs, repair=repair, prune_orphans=prune_orphans)
    if as_json:
        _print_json(report.to_json())
    else:
        out.print(
            f"[bold]{escape(report.store)}[/]: {report.referenced} blob(s) referenced, "
            f"{report.stored} stored"
        )
        for m in report.missing:
            rows = ", ".join(f"{r.table} {r.row}" for r in m.refs)
            more = f" (+{m.ref_count - len(m.refs)} more)" if m.ref_count > len(m.refs) else ""
            out.print(f"  [red]missing[/] {m.digest} needed by {escape(rows)}{more}")
        for c in report.corrupt:
            state = (
                "healed from a verified copy"
                if c.healed
                else f"quarantined to {c.quarantined_to}; re-run to regenerate"
                if c.quarantined_to
                else "run with --repair to quarantine it"
            )
            out.print(f"  [red]corrupt[/] {c.digest} at {escape(c.where)}: {escape(state)}")
        for tmp in report.stale_temps:
            verb = "removed" if report.temps_removed else "left (run with --repair)"
            out.print(f"  [yellow]half-written[/] {escape(tmp)} {verb}")
        pruned = sum(1 for o in report.orphans if o.pruned)
        if report.orphans:
            out.print(
                f"  [yellow]orphans[/] {len(report.orphans)} blob(s) no row names"
                + (f", {pruned} pruned" if pruned else "")
            )
        for e in report.errors:
            out.print(f"  [red]error[/] {escape(e)}")
        if report.clean:
            out.print("[green]✓[/] clean")
        else:
            out.print(f"[red]✗[/] {report.problems} problem(s) remain")
    if not report.clean:
        raise typer.Exit(1)
