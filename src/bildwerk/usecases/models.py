"""The model registry as use cases: add, list, remove, pull."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bildwerk.usecases.rows import as_dict

if TYPE_CHECKING:
    from bildwerk.workspace import Workspace


def add_model(
    ws: Workspace,
    path: Path,
    *,
    name: str,
    kind: str | None = None,
    architecture: str | None = None,
    license: str = "",
    source: str = "",
    allowed_uses: tuple[str, ...] = (),
    replace: bool = False,
) -> dict[str, Any]:
    from bildwerk import modelreg

    with ws.db.session() as s:
        entry = modelreg.add_model(
            s,
            path,
            name=name,
            kind=kind,
            architecture=architecture,
            license=license,
            source=source,
            allowed_uses=allowed_uses,
            replace=replace,
        )
        return as_dict(entry)


def models(ws: Workspace, kind: str | None = None) -> list[dict[str, Any]]:
    from bildwerk import modelreg

    with ws.db.session() as s:
        return [as_dict(m) for m in modelreg.list_models(s, kind)]


def remove_model(ws: Workspace, name: str) -> dict[str, Any]:
    from bildwerk import modelreg

    with ws.db.session() as s:
        return as_dict(modelreg.remove_model(s, name))


def pull_model(
    ws: Workspace,
    repo_id: str,
    *,
    name: str | None = None,
    revision: str | None = None,
    license: str = "",
) -> dict[str, Any]:
    """Download from the Hugging Face Hub into ``models/`` and register it."""
    from bildwerk import modelreg

    dest = ws.root / "models" / repo_id.replace("/", "--")
    path = modelreg.pull_model(repo_id, dest, revision=revision)
    return ws.add_model(
        path,
        name=name or repo_id.split("/")[-1],
        license=license,
        source=f"hf:{repo_id}" + (f"@{revision}" if revision else ""),
    )
