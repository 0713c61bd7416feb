"""Command line: parses, calls the Workspace API, prints. Every ``BildwerkError`` maps to
its exit code (see ``bildwerk.errors``) and is printed without a traceback.

One module per group of commands; importing them registers the commands, in the order
``bildwerk --help`` lists them.
"""

from __future__ import annotations

import importlib
import signal
import sys

from rich.markup import escape

from bildwerk.cli.common import app, err
from bildwerk.errors import BildwerkError, Terminated, as_disk_full

__all__ = ["app", "main"]

for _group in (
    "line",
    "review",
    "publishing",
    "runs",
    "catalog",
    "accounts",
    "serve",
):  # the order --help shows
    importlib.import_module(f"bildwerk.cli.{_group}")


def _terminate(signum: int, _frame: object) -> None:
    raise Terminated(signum)


def main() -> None:
    """Run the CLI; every :class:`BildwerkError` becomes its message and exit code (the
    table is in :mod:`bildwerk.errors`); anything else is a bug and keeps its traceback.
    SIGTERM stops a command like Ctrl-C: a run ends marked ``interrupted`` and its
    workers stop with it."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app()
    except BildwerkError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except OSError as exc:
        full = as_disk_full(exc)
        if full is None:
            raise
        err.print(f"[red]error:[/] {escape(str(full))}", highlight=False, soft_wrap=True)
        sys.exit(full.exit_code)
    except (KeyboardInterrupt, Terminated) as exc:
        err.print("interrupted; re-run the same command to resume")
        sys.exit(143 if isinstance(exc, Terminated) else 130)
