"""What every command shares: the Typer apps, consoles, common options, the workspace
lookup and JSON-or-text replies."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bildwerk.errors import WorkspaceError

if TYPE_CHECKING:  # heavy (SQLAlchemy, numpy, Pillow): imported by the commands that run
    from bildwerk.accounts.governance import Actor
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


# the --workspace given before the command; set on every invocation by the callback
_GLOBAL_WORKSPACE: ContextVar[Path | None] = ContextVar("global_workspace", default=None)


@app.callback()
def _global_options(workspace: WorkspaceOpt = None) -> None:
    """bildwerk: brief in, branded and reproducible image variants out."""
    # ``bildwerk -w DIR run ...`` (as init suggests) and ``bildwerk run ... -w DIR`` both
    # work: a command's own --workspace wins, else this one (see _ws)
    _GLOBAL_WORKSPACE.set(workspace)


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


@contextlib.contextmanager
def _progress(as_json: bool) -> Iterator[ProgressView]:
    """The progress view ``run`` shows, fed by an operation's event stream (on stderr
    when stdout carries JSON)."""
    from bildwerk.progress import progress_bars

    with progress_bars(err if as_json else out) as view:
        yield view


def _ws(path: Path | None, near: Path | None = None) -> Workspace:
    """--workspace (after or before the command), else $BILDWERK_WORKSPACE, else the
    current folder's or the brief's nearest ancestor holding bildwerk.yaml."""
    from bildwerk.workspace import Workspace, find_root

    path = path or _GLOBAL_WORKSPACE.get()
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


def _actor(by: str | None) -> str:
    return by or os.environ.get("BILDWERK_USER") or getpass.getuser()


def _governed(ws: Workspace, by: str | None) -> Actor | None:
    """The CLI's actor when ``governance.cli`` binds the command line, else None."""
    from bildwerk.accounts.governance import cli_actor

    return cli_actor(ws.db, ws.settings.governance, _actor(by))


db_app = typer.Typer(no_args_is_help=True, help="The catalog's schema: status and upgrades.")


app.add_typer(db_app, name="db")
audit_app = typer.Typer(
    no_args_is_help=True, help="The tamper-evident audit trail: verify it, keep its head."
)
app.add_typer(audit_app, name="audit")


def _table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """A Rich table of ``columns`` printed to stdout (the text form of a listing)."""
    table = Table()
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    out.print(table)
