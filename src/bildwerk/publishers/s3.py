"""An S3 (or S3-compatible) bucket target through fsspec/s3fs (the ``publish`` extra)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from bildwerk.errors import MissingExtraError, UserError
from bildwerk.publishers.base import TargetRejectedError, TargetUnavailableError, check_key

# --------------------------------------------------------------------------- S3


class S3Target:
    """An S3 (or S3-compatible: MinIO, R2) bucket through s3fs; each object carries its
    own ``Content-Type`` and ``Cache-Control``, which S3 serves back as HTTP headers."""

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        public_base_url: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        timeout: float = 10.0,
        retries: int = 2,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise UserError(f"not an S3 URL: {url!r}", hint="write it as s3://bucket/prefix")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.endpoint_url = endpoint_url.rstrip("/") if endpoint_url else None
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self._options = dict(storage_options or {})
        self._timeout = timeout
        self._retries = max(1, retries)
        self._fs: Any = None

    @property
    def name(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"

    def url(self, key: str) -> str:
        full = quote(f"{self.prefix}/{key}" if self.prefix else key)
        if self.public_base_url:
            return f"{self.public_base_url}/{quote(key)}"
        if self.endpoint_url:
            return f"{self.endpoint_url}/{self.bucket}/{full}"
        return f"https://{self.bucket}.s3.amazonaws.com/{full}"

    def _path(self, key: str) -> str:
        check_key(key)
        return f"{self.bucket}/{self.prefix}/{key}" if self.prefix else f"{self.bucket}/{key}"

    def _filesystem(self) -> Any:
        if self._fs is None:
            try:
                s3fs = importlib.import_module("s3fs")
            except ImportError:
                raise MissingExtraError("s3fs", "publish", "Publishing to S3") from None
            where = f"S3 target {self.name}"
            from bildwerk.netguard import endpoint_urls, pinned_resolver

            # the endpoints are resolved and checked now; s3fs connects only to those
            # addresses (no DNS rebinding between the check and the connect)
            endpoints = [self.endpoint_url] if self.endpoint_url else []
            resolver = pinned_resolver(where, endpoints + endpoint_urls(self._options))
            options = dict(self._options)
            config = {
                **dict(options.pop("config_kwargs", None) or {}),
                "connect_timeout": min(self._timeout, 5.0),
                "read_timeout": self._timeout,
                "retries": {"max_attempts": self._retries, "mode": "standard"},
                "connector_args": {"resolver": resolver},
            }
            self._fs = s3fs.S3FileSystem(
                endpoint_url=self.endpoint_url,
                config_kwargs=config,
                skip_instance_cache=True,
                use_listings_cache=False,
                **options,
            )
            self._fs.retries = self._retries  # s3fs's own loop on top of botocore's
        return self._fs

    def _call(self, what: str, fn: Callable[[Any], Any]) -> Any:
        try:
            return fn(self._filesystem())
        except (MissingExtraError, UserError):
            raise
        except FileNotFoundError as exc:
            raise TargetRejectedError(
                self.name,
                f"{what}: bucket '{self.bucket}' not found ({exc})",
                hint="create the bucket or fix the s3:// URL",
            ) from exc
        except PermissionError as exc:
            raise TargetRejectedError(
                self.name,
                f"{what}: access denied ({exc})",
                hint="check the credentials and that they may write to this bucket",
            ) from exc
        except Exception as exc:  # botocore errors are untyped here; classify by name
            kind = type(exc).__name__
            if "Credentials" in kind:
                raise TargetRejectedError(
                    self.name,
                    f"{what}: no usable credentials ({kind})",
                    hint="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or an AWS profile",
                ) from exc
            raise TargetUnavailableError(
                self.name,
                f"{what} failed: {kind}: {exc}",
                attempts=self._retries,
                hint="check endpoint_url, the network and the bucket's region",
            ) from exc

    def put(self, key: str, data: bytes, *, content_type: str, cache_control: str) -> str:
        path = self._path(key)
        self._call(
            f"upload {key}",
            lambda fs: fs.pipe_file(
                path, data, ContentType=content_type, CacheControl=cache_control
            ),
        )
        return self.url(key)

    def delete(self, key: str) -> None:
        path = self._path(key)
        self._call(f"delete {key}", lambda fs: fs.rm_file(path))

    def exists(self, key: str) -> bool:
        path = self._path(key)

        def is_object(fs: Any) -> bool:
            # not fs.exists/isfile: a "folder" prefix is not an object, and isfile
            # swallows connection errors as False
            try:
                return bool(fs.info(path).get("type") == "file")
            except FileNotFoundError:
                return False

        return bool(self._call(f"look up {key}", is_object))
