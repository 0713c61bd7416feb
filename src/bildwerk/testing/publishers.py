"""The contracts of publish targets (``bildwerk.targets`` entry points): storage targets
that serve bytes, and notifiers (webhooks) that are told about a publish."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import pytest

from bildwerk.errors import MissingExtraError, UserError
from bildwerk.publishers.base import IMMUTABLE, REVALIDATE, Notifier, PublishTarget
from bildwerk.registry import targets
from bildwerk.testing.common import OPTIONAL_MODULES, assert_json, hide_modules, package_names

UNSAFE_KEYS = ("", "../escape.png", "/absolute.png", "a//b.png", ".hidden.png", "a/./b.png")
KEY = "img/contract grüße-640w.webp"  # a folder, a space and non-ASCII: URLs must quote it


def _registered(name: str | None, instance: object) -> None:
    if name is None:
        return
    factory = targets.load(name)
    if isinstance(factory, type):
        assert isinstance(instance, factory), f"'{name}' names {factory}"


class PublishTargetContract:
    """Tests every storage :class:`~bildwerk.publishers.base.PublishTarget` must pass.

    Subclass it in a ``Test…`` class and implement :meth:`make_target` (a target with
    nothing in it yet) and :meth:`read` (what it serves for a key, read back the way a
    client or the host would: the file, the object, an HTTP GET of the URL)::

        class TestMyTarget(PublishTargetContract):
            registered_name = "mine"            # its type in ``bildwerk.targets``
            def make_target(self): return MyTarget(...)
            def read(self, target, key, url): return httpx.get(url).content

    A target's ``name`` says which target it is in messages (it is not the registered
    type name) and never holds a secret. Keys are checked the same everywhere: an unsafe
    key is a :class:`~bildwerk.errors.UserError` for ``put``, ``exists`` and ``delete``.
    """

    registered_name: ClassVar[str | None] = None
    """The type name under ``bildwerk.targets``; None for a target built only in code."""
    extra_modules: ClassVar[tuple[str, ...]] = ()
    secrets: ClassVar[tuple[str, ...]] = ()

    def make_target(self) -> PublishTarget:
        raise NotImplementedError

    def read(self, target: Any, key: str, url: str) -> bytes:
        """The bytes ``target`` serves for ``key`` (published at ``url``)."""
        raise NotImplementedError

    def headers(self, target: Any, key: str, url: str) -> Mapping[str, str] | None:
        """``Content-Type`` and ``Cache-Control`` served with ``key``; None when the
        target keeps no headers."""
        return None

    def forget_models(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Drop process-wide client caches so a hidden extra is noticed."""

    # ------------------------------------------------------------------ tests

    def test_protocol_and_name(self) -> None:
        target = self.make_target()
        assert isinstance(target, PublishTarget)
        assert isinstance(target.name, str) and target.name.strip()
        assert self.make_target().name == target.name, "the same settings, the same name"
        _registered(self.registered_name, target)
        for secret in self.secrets:
            assert secret not in target.name and secret not in repr(target)

    def test_put_exists_read_delete(self) -> None:
        target = self.make_target()
        data = b"RIFF contract bytes \x00\xff" * 32
        assert not target.exists(KEY)
        url = target.put(KEY, data, content_type="image/webp", cache_control=IMMUTABLE)
        assert isinstance(url, str) and url.endswith(quote(KEY)), url
        assert target.exists(KEY)
        assert self.read(target, KEY, url) == data
        headers = self.headers(target, KEY, url)
        if headers is not None:
            got = {k.lower(): v for k, v in headers.items()}
            assert got.get("content-type") == "image/webp", headers
            assert got.get("cache-control") == IMMUTABLE, headers
        again = target.put(KEY, data, content_type="image/webp", cache_control=IMMUTABLE)
        assert again == url, "put is idempotent: the same key and bytes, the same URL"
        target.delete(KEY)
        assert not target.exists(KEY)
        target.delete(KEY)  # deleting what is gone is no error

    def test_revalidated_names_may_change_bytes(self) -> None:
        target = self.make_target()
        key = "sitemap-images.xml"
        first = target.put(
            key, b"<urlset/>", content_type="application/xml", cache_control=REVALIDATE
        )
        second = target.put(
            key, b"<urlset>2</urlset>", content_type="application/xml", cache_control=REVALIDATE
        )
        assert first == second
        assert self.read(target, key, second) == b"<urlset>2</urlset>"

    def test_absent_keys(self) -> None:
        target = self.make_target()
        assert not target.exists("never/published.png")
        target.delete("never/published.png")

    @pytest.mark.parametrize("key", UNSAFE_KEYS)
    def test_unsafe_keys_are_refused(self, key: str) -> None:
        target = self.make_target()
        with pytest.raises(UserError):
            target.put(key, b"x", content_type="image/png", cache_control=IMMUTABLE)
        with pytest.raises(UserError):
            target.exists(key)
        with pytest.raises(UserError):
            target.delete(key)

    def test_missing_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        data = b"bytes"
        if not self.extra_modules:
            hide_modules(monkeypatch, OPTIONAL_MODULES)
            self.forget_models(monkeypatch)
            target = self.make_target()
            url = target.put("a.png", data, content_type="image/png", cache_control=IMMUTABLE)
            assert self.read(target, "a.png", url) == data
            return
        hide_modules(monkeypatch, self.extra_modules)
        self.forget_models(monkeypatch)
        with pytest.raises(MissingExtraError) as err:
            self.make_target().put("a.png", data, content_type="image/png", cache_control=IMMUTABLE)
        names = package_names(self.extra_modules)
        assert any(name in str(err.value) for name in names), str(err.value)


class NotifierContract:
    """Tests every :class:`~bildwerk.publishers.base.Notifier` (a CMS webhook) must pass.

    Implement :meth:`make_notifier` and :meth:`received` (the events the receiving end
    got, parsed, oldest first). Delivery is deterministic: the same event arrives as the
    same JSON every time, so a receiver can deduplicate retries and re-runs.
    """

    registered_name: ClassVar[str | None] = None
    secrets: ClassVar[tuple[str, ...]] = ()

    def make_notifier(self) -> Notifier:
        raise NotImplementedError

    def received(self) -> list[Any]:
        raise NotImplementedError

    def event(self) -> dict[str, Any]:
        return {
            "type": "bildwerk.published",
            "version": 1,
            "run_id": "run-contract",
            "assets": [{"asset_id": "a1", "alt": "Serum auf Podest – grün", "width": 640}],
        }

    def test_protocol_and_name(self) -> None:
        notifier = self.make_notifier()
        assert isinstance(notifier, Notifier)
        assert isinstance(notifier.name, str) and notifier.name.strip()
        _registered(self.registered_name, notifier)
        for secret in self.secrets:
            assert secret not in notifier.name and secret not in repr(notifier)

    def test_delivers_the_event_as_json(self) -> None:
        event = self.event()
        assert_json(event, "the test event")
        self.make_notifier().notify(event)
        assert self.received()[-1] == event

    def test_same_event_same_delivery(self) -> None:
        notifier = self.make_notifier()
        notifier.notify(self.event())
        self.make_notifier().notify(self.event())
        first, second = self.received()[-2:]
        assert first == second == self.event()
