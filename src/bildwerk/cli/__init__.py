"""Command line: parses, calls the Workspace API, prints. Every ``BildwerkError`` maps to
its exit code (see ``bildwerk.errors``) and is printed without a traceback.

One module per group of commands; importing them registers the commands, in the order
``bildwerk --help`` lists them.
"""

from __future__ import annotations

import importlib
import sys

from rich.markup import escape

from bildwerk.cli.common import app, err
from bildwerk.errors import BildwerkError

__all__ = ["app", "main"]

for _group in ("line", "review", "publishing", "runs", "catalog"):  # the order --help shows
    importlib.import_module(f"bildwerk.cli.{_group}")


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
