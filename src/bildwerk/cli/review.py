"""People's part: review queues, approvals, rejections; reproductions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from bildwerk.errors import UserError

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
    _table,
    _ws,
    app,
    out,
)


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
    _table(
        ("id", "channel", "segment", "locale", "rank", "score", "state", "reasons"),
        (
            (
                r["id"],
                r["channel"],
                r["segment"] or "",
                r["locale"] or "",
                str(r["rank"] or ""),
                f"{r['score']:.3f}" if r["score"] is not None else "",
                r["state"],
                "; ".join(r["reasons"]),
            )
            for r in rows
        ),
    )


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
        ws = _ws(workspace)
        result = ws.approve_run(
            run,
            actor=_actor(by),
            include_review=include_review,
            include_unchecked=include_unchecked,
            reason=reason,
            governed=_governed(ws, by),
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
    ws = _ws(workspace)
    row = ws.decide(asset_id, "approved", actor=_actor(by), reason=reason, override=override,
                    governed=_governed(ws, by))  # fmt: skip
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


@app.command()
def undo(
    asset_id: str,
    workspace: WorkspaceOpt = None,
    by: Annotated[str | None, typer.Option(help="Whose decision to take back.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Take back your latest decision on a creative (the log keeps both)."""
    row = _ws(workspace).undo(asset_id, actor=_actor(by))
    _report(as_json, row, f"↶ {row['id']} is {row['state']} again ({row['previous']} undone)")


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
