"""The catalog and what it holds: assets, models, the schema (db), fsck."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from bildwerk.errors import UserError

if TYPE_CHECKING:  # heavy (SQLAlchemy, numpy, Pillow): imported by the commands that run
    pass

from bildwerk.cli.common import (
    JsonOpt,
    WorkspaceOpt,
    _print_json,
    _report,
    _table,
    _ws,
    app,
    assets_app,
    audit_app,
    db_app,
    models_app,
    out,
)


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
    _table(
        ("id", "kind", "size", "campaign", "sha256"),
        (
            (a.id, a.kind, f"{a.width}×{a.height}", a.campaign_id or "", a.sha256[:12])
            for a in assets
        ),
    )


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
    _table(
        ("name", "kind", "architecture", "sha256", "licence", "size"),
        (
            (
                r["name"],
                r["kind"],
                r["architecture"],
                r["sha256"][:12],
                r["license"],
                f"{r['size_bytes'] / 1e6:.1f} MB",
            )
            for r in rows
        ),
    )


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


@audit_app.command("verify")
def audit_verify_cmd(
    expect: Annotated[
        str | None,
        typer.Option(
            "--expect",
            help="A head hash kept outside (`bildwerk audit head`) that must "
            "still be part of the chain.",
        ),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="A signed checkpoint (`audit head --checkpoint`): its signature "
            "must hold and its head must still be in the chain."
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute the audit chain from its first entry; name the first entry that was
    edited, deleted, inserted or moved. Exits 1 when the chain does not hold."""
    from bildwerk.catalog.audit import verify

    ws = _ws(workspace)
    signed = None
    if checkpoint is not None:
        from bildwerk.publish.checkpoint import read_checkpoint

        signed = read_checkpoint(checkpoint)
        if expect is not None and expect != signed["hash"]:
            raise UserError("--expect and --checkpoint name different heads; give one")
        expect = signed["hash"]
    with ws.db.session(write=False) as s:
        verdict = verify(s, expect=expect)
    data = {**asdict(verdict), "checkpoint": signed}
    if verdict.ok:
        _report(
            as_json, data,
            f"[green]✓[/] audit chain holds: {verdict.entries} entries, head "
            f"{verdict.head_seq} {verdict.head_hash}",
        )  # fmt: skip
        return
    _report(as_json, data, f"[red]✗[/] audit chain broken at entry {verdict.broken_at}: "
            f"{escape(verdict.problem)}")  # fmt: skip
    raise typer.Exit(1)


@audit_app.command("head")
def audit_head_cmd(
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="Also write the head here, signed with the workspace's signing "
            "key (`bildwerk keys`), to keep outside the system."
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The chain's newest entry and hash: keep it outside the system (a ticket, a
    notary, another machine) and check it later with `bildwerk audit verify --expect`
    (or `--checkpoint` for a signed one)."""
    from bildwerk.catalog.models import AuditHead

    ws = _ws(workspace)
    with ws.db.session(write=False) as s:
        head = s.get(AuditHead, 1)
        if head is None:
            raise UserError("this catalog has no audit head", hint="run `bildwerk db upgrade`")
        data: dict[str, Any] = {"seq": head.seq, "hash": head.hash}
    text = f"{data['seq']} {data['hash']}"
    if checkpoint is not None:
        from bildwerk.publish.checkpoint import sign_checkpoint, write_checkpoint
        from bildwerk.publish.stamp import load_identity

        identity = load_identity(ws.root, ws.settings.signing)
        write_checkpoint(checkpoint, sign_checkpoint(identity.signer, head.seq, head.hash))
        data["checkpoint"] = str(checkpoint)
        text += f"\nsigned checkpoint written to {checkpoint}" + (
            " (dev key: NOT FOR PRODUCTION)" if identity.dev else "")  # fmt: skip
    _report(as_json, data, text)
