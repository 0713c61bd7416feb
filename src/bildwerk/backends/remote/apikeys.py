"""API keys: only from the environment or a private secrets file, wrapped in :class:`Secret`
so they never reach logs, ``repr``, exception text or recorded params."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from bildwerk.config.yamlfile import read_yaml
from bildwerk.errors import ConfigError, UserError

SECRETS_ENV = "BILDWERK_SECRETS"


# --------------------------------------------------------------------------- secrets


class Secret:
    """An API key that does not show itself: ``repr``/``str`` are masked and
    :meth:`redact` scrubs it from any text a server sends back."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        value = value.strip()
        if not value:
            raise ValueError("empty secret")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def redact(self, text: str) -> str:
        """``text`` without the key, without any 8+ character piece of it that a server
        might echo (OpenAI shows a masked prefix and suffix), and without key-like tokens."""
        out = text.replace(self._value, "[redacted]")
        if len(self._value) >= 16:
            for piece in (self._value[:8], self._value[-8:]):
                out = out.replace(piece, "[redacted]")
        return _KEYLIKE.sub("[redacted]", out)


_KEYLIKE = re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-*.]{6,}")


def secrets_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$BILDWERK_SECRETS``, else ``$XDG_CONFIG_HOME``/``~/.config`` + bildwerk/secrets.yaml."""
    env = os.environ if environ is None else environ
    if env.get(SECRETS_ENV):
        return Path(env[SECRETS_ENV]).expanduser()
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path("~/.config")
    return base.expanduser() / "bildwerk" / "secrets.yaml"


def resolve_api_key(
    var: str,
    *,
    service: str,
    environ: Mapping[str, str] | None = None,
    secrets_file: Path | None = None,
) -> Secret:
    """The key from the environment variable ``var``, else from the secrets file (a YAML
    mapping ``VAR: value``). A secrets file accessible to group or others is refused."""
    env = os.environ if environ is None else environ
    if env.get(var, "").strip():
        return Secret(env[var])
    path = secrets_file or secrets_path(env)
    if path.exists():
        mode = path.stat().st_mode
        if os.name != "nt" and mode & 0o077:
            raise UserError(
                f"{path}: the secrets file is accessible by group or others "
                f"(mode {mode & 0o777:o}); refusing to read API keys from it",
                hint=f"run: chmod 600 {path}",
            )
        doc = read_yaml(path)
        if doc.data is not None and not isinstance(doc.data, dict):
            raise ConfigError(path, "the secrets file must be a mapping of NAME: value", line=1)
        value = (doc.data or {}).get(var)
        if value is not None and not isinstance(value, str):
            raise ConfigError(path, "must be a string", line=doc.line_of((var,)), field=var)
        if value and value.strip():
            return Secret(value)
    elif env.get(SECRETS_ENV):
        raise UserError(f"{path}: the secrets file named by ${SECRETS_ENV} does not exist")
    raise UserError(
        f"no API key for {service}: {var} is not set",
        hint=f"export {var}=… or add '{var}: …' to {path} (chmod 600)",
    )
