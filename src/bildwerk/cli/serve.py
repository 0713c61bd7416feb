"""``bildwerk serve``: the web app and REST API, with one queue worker beside it."""

from __future__ import annotations

import subprocess
import sys
from typing import Annotated

import typer

from bildwerk.cli.common import WorkspaceOpt, _ws, app, err
from bildwerk.errors import MissingExtraError, Terminated
from bildwerk.netguard import is_loopback


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on (this machine only by default).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8080,
    no_worker: Annotated[
        bool,
        typer.Option("--no-worker", help="Run no queue worker here (`bildwerk worker` elsewhere)."),
    ] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Serve the web app and the API (``/api/v1``, schema at ``/api/docs``) and run queued
    runs in a `bildwerk worker` beside it. Log in with an account from `bildwerk users add`."""
    try:
        import uvicorn

        from bildwerk.web.app import create_app
    except ImportError as exc:
        raise MissingExtraError(exc.name or "fastapi", "web", "bildwerk serve") from exc
    root = _ws(workspace).root
    if not is_loopback(host):
        err.print(
            f"[bold yellow]warning:[/] listening on {host} without TLS: passwords and session "
            "cookies cross the network in clear text. Put bildwerk behind an HTTPS reverse "
            "proxy (cookies are marked Secure on HTTPS requests)."
        )
    worker = None
    if not no_worker:
        worker = subprocess.Popen(
            [sys.executable, "-m", "bildwerk", "worker", "--workspace", str(root)]
        )
    try:
        uvicorn.run(create_app(root), host=host, port=port, proxy_headers=False, log_level="info")
    except (KeyboardInterrupt, Terminated):  # uvicorn shut down cleanly, then re-raised
        pass
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
    err.print("bildwerk serve stopped")
