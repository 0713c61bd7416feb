"""Publishing settings in ``bildwerk.yaml``: named targets and the signing credentials.

Targets are declared once per workspace and picked by name (``publish RUN --to site``), so
a brief never carries bucket names or webhook secrets. Secrets themselves never live in
the file: a webhook names the environment variable that holds its secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_NAME = r"^[a-z0-9][a-z0-9_-]*$"


class _Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FolderTargetSettings(_Target):
    """A folder laid out as a CDN origin (serve it as is, or sync it to any host)."""

    type: Literal["folder"]
    path: Path = Field(description="the origin's root folder; relative to the workspace")
    base_url: str = Field(
        description="public URL the folder is served at, e.g. https://cdn.example.com"
    )
    site_url: str | None = Field(
        None,
        description="URL of the site pages (landing pages, sitemap); default: base_url",
    )

    @field_validator("base_url", "site_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        return _http_url(value)


class S3TargetSettings(_Target):
    """An S3-compatible bucket (AWS, MinIO, R2) through s3fs; credentials from the usual
    AWS environment variables or profiles, never from this file."""

    type: Literal["s3"]
    url: str = Field(pattern=r"^s3://[^/\s]+(/\S*)?$", description="s3://bucket/prefix")
    endpoint_url: str | None = None
    public_base_url: str | None = None
    site_url: str | None = Field(None, description="URL of the site pages; default: bucket URL")

    @field_validator("endpoint_url", "public_base_url", "site_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        return _http_url(value)


class WebhookTargetSettings(_Target):
    """A CMS webhook told about each publish; the files themselves live on ``origin``."""

    type: Literal["webhook"]
    url: str
    secret_env: str = Field(
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="environment variable holding the HMAC secret",
    )
    origin: str = Field(pattern=_NAME, description="the folder or s3 target serving the files")
    timeout: float | None = Field(
        None, gt=0, le=120, description="read timeout; default network.webhook.read_timeout"
    )
    max_attempts: int = Field(4, ge=1, le=10)
    allow_insecure: bool = False

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        return _http_url(value) or value


TargetSettings = Annotated[
    FolderTargetSettings | S3TargetSettings | WebhookTargetSettings,
    Field(discriminator="type"),
]


class SigningSettings(BaseModel):
    """Production signing credentials (``bildwerk keys use``). Without them, publishing
    signs with the dev chain from ``bildwerk keys dev-init`` and says so loudly.

    ``callback`` names a Python callable ``module:function`` that receives the bytes to
    sign and returns the signature, for keys held in a KMS or HSM; ``key`` is then unused.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    cert: Path = Field(description="PEM chain, leaf first; relative to the workspace")
    key: Path | None = Field(None, description="PEM private key of the leaf")
    callback: str | None = Field(None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    alg: str | None = Field(None, description="with callback: es256, ps256, ed25519, ...")
    tsa_url: str | None = None

    @field_validator("tsa_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        return _http_url(value)


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.startswith(("http://", "https://")) or len(value) < 10:
        raise ValueError("must be an http(s) URL")
    return value.rstrip("/")
