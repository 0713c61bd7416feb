"""Publishing: signing keys, publish and sync, rights, verify."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from bildwerk.errors import UserError, WorkspaceError

if TYPE_CHECKING:  # heavy (SQLAlchemy, numpy, Pillow): imported by the commands that run
    from bildwerk.workspace import Workspace

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
    keys_app,
    out,
)


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
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            min=0,
            help="Seconds to wait while another publish holds a target (default: fail at "
            "once, naming the holder).",
        ),
    ] = 0.0,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stamp (metadata, Content Credentials) and publish approved creatives; --sync
    unpublishes what expired or was revoked. One publisher per target at a time."""
    ws = _ws(workspace)
    if sync:
        if run_id or to:
            raise UserError("--sync takes no RUN or --to", hint="run `bildwerk publish --sync`")
        with _progress(as_json) as view:
            done = ws.publisher(_actor(by), on_event=view).sync(wait=wait)
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
        result = ws.publisher(_actor(by), on_event=view, governed=_governed(ws, by)).publish(
            run_id, to or [], wait=wait
        )
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
            if "reason" not in c2pa
            else f" ({c2pa.get('reason')})"
        )
        + (f"\n  manifest: {c2pa['manifest_from']}" if c2pa.get("manifest_from") else "")
    )
    mark = report["watermark"]
    if mark:
        owner = f" → {mark['asset_id']} (match {mark['match']})" if mark.get("asset_id") else ""
        out.print(f"  watermark: {mark['hex']}{owner}")
    for key, value in report["xmp"].items():
        out.print(f"  {key}: {value}")
