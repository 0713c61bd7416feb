"""An in-memory target: for tests and dry runs."""

from __future__ import annotations

from urllib.parse import quote

from bildwerk.publishers.base import check_key


class MemoryTarget:
    """In-memory target for tests and dry runs; keeps what ``put`` was given."""

    def __init__(self, base_url: str = "https://example.invalid") -> None:
        self.base_url = base_url.rstrip("/")
        self.objects: dict[str, tuple[bytes, str, str]] = {}

    @property
    def name(self) -> str:
        return "memory"

    def put(self, key: str, data: bytes, *, content_type: str, cache_control: str) -> str:
        self.objects[check_key(key)] = (bytes(data), content_type, cache_control)
        return f"{self.base_url}/{quote(key)}"

    def delete(self, key: str) -> None:
        self.objects.pop(check_key(key), None)

    def exists(self, key: str) -> bool:
        return check_key(key) in self.objects
