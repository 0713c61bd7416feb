"""Error hierarchy: every error raised on purpose says what was wrong, where, and what to
do, and maps to one exit code of the CLI (``bildwerk.cli.main``), printed without a
traceback:

====  =====================  ==============================================================
code  class                  meaning
====  =====================  ==============================================================
0     –                      done
1     –                      the command ran and reports a negative outcome (failed jobs,
                             jobs the prompt guard refused, pixels that differ); also
                             Python's code for a bug, which keeps its traceback
2     :class:`UserError`     something the user can fix: input, settings, a missing extra
3     :class:`ServiceError`  a remote service (image API, webhook, bucket) could not be
                             reached or kept failing; the message names its URL
4     :class:`BildwerkError` any other deliberate failure (e.g. a service refused content,
                             :class:`DiskFullError`)
130   –                      interrupted (Ctrl-C); re-running the same command resumes
143   –                      terminated (SIGTERM); the same
====  =====================  ==============================================================

Anything that is not a :class:`BildwerkError` is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar


class BildwerkError(Exception):
    """Base class for errors raised on purpose by bildwerk."""

    exit_code: ClassVar[int] = 4

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        # not super().__init__: subclasses mixing two branches (a ServiceError that is
        # also a PublishError) must not route the rendered text into another __init__
        Exception.__init__(self, self.__str__())

    def __str__(self) -> str:
        return f"{self.message}\n  → {self.hint}" if self.hint else self.message


class UserError(BildwerkError):
    """Something the user can fix: bad input, missing file, wrong option."""

    exit_code: ClassVar[int] = 2


class ServiceError(BildwerkError):
    """A remote service could not be reached, timed out or kept failing after retries.

    ``url`` is the service's address (never with credentials or a query string); the
    message names it and the hint says what to check. Re-running is safe: finished work
    is kept.
    """

    exit_code: ClassVar[int] = 3

    def __init__(self, message: str, *, url: str | None = None, hint: str | None = None) -> None:
        self.url = url
        BildwerkError.__init__(self, message, hint=hint)


class ConfigError(UserError):
    """A YAML file (brief, brand kit, workspace settings) is invalid."""

    def __init__(
        self,
        path: Path | str,
        message: str,
        *,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.line = line
        self.field = field
        self.detail = message
        where = str(self.path) + (f":{line}" if line else "")
        what = f"{field}: {message}" if field else message
        super().__init__(f"{where}: {what}", hint=hint)


class InputImageError(UserError):
    """An image given to bildwerk cannot be used (not an image, truncated, too large...)."""

    def __init__(self, path: Path | str, message: str, *, hint: str | None = None) -> None:
        self.path = Path(path)
        super().__init__(f"{self.path}: {message}", hint=hint)


class WorkspaceError(UserError):
    """No workspace found, or the workspace is damaged."""


class NotFoundError(UserError):
    """A run, asset or other catalog object does not exist."""


class NotAllowedError(UserError):
    """A rule of the team's governance forbids this (separation of duties): says which
    rule and who else can do it."""


class QuotaError(UserError):
    """A submission would go over someone's quota: says the quota, what is used, and
    when room frees up."""


class MissingExtraError(UserError):
    """An optional dependency is needed; says which extra installs it. ``extra=None`` is
    for a package no bildwerk extra provides (a third-party plugin's): the hint then says
    to install the package itself."""

    def __init__(self, package: str, extra: str | None, purpose: str) -> None:
        self.package = package
        self.extra = extra
        install = f"pip install 'bildwerk[{extra}]'" if extra else f"pip install {package}"
        super().__init__(
            f"{purpose} needs the Python package '{package}', which is not installed.",
            hint=f"install it with: {install}",
        )


class DiskFullError(BildwerkError):
    """A write ran out of space: names the path, what it needed and what was free.
    Nothing half-written is referenced, so freeing space and re-running resumes."""

    def __init__(self, path: Path | str | None, *, needed: int | None = None) -> None:
        import shutil

        where = Path(path) if path else None
        free = None
        probe = where
        while probe is not None and not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if probe is not None:
            try:
                free = shutil.disk_usage(probe).free
            except OSError:
                free = None
        need = f", needing {needed:,} bytes" if needed else ""
        room = f" ({free:,} bytes free there)" if free is not None else ""
        super().__init__(
            f"no space left on the device writing {where or 'a file'}{need}{room}",
            hint="free some space (or move the workspace) and run the same command again; "
            "what finished is kept",
        )


class Terminated(BaseException):
    """SIGTERM arrived: raised in the main thread so a run ends cleanly, as for Ctrl-C."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"terminated by signal {signum}")


def as_disk_full(exc: BaseException) -> DiskFullError | None:
    """The disk-full error an OS or database error really is, or None."""
    import errno

    if isinstance(exc, DiskFullError):
        return exc
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(exc.filename)
    text = str(exc)
    if "database or disk is full" in text or "No space left on device" in text:
        return DiskFullError(None)
    return None
