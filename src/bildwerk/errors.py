"""Error hierarchy: every user mistake says what was wrong, where, and what to do.

The CLI maps :class:`UserError` to exit code 2 and prints only the message; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class BildwerkError(Exception):
    """Base class for errors raised on purpose by bildwerk."""


class UserError(BildwerkError):
    """Something the user can fix: bad input, missing file, wrong option."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.message}\n  → {self.hint}" if self.hint else self.message


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


class MissingExtraError(UserError):
    """An optional dependency is needed; says which extra installs it."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the Python package '{package}', which is not installed.",
            hint=f"install it with: pip install 'bildwerk[{extra}]'",
        )
