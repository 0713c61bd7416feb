"""The contract every generation backend passes (``bildwerk.backends`` entry points)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import pytest

from bildwerk.backends.base import Capabilities, Generated, GenerationBackend, SceneRequest
from bildwerk.config.channels import Insets
from bildwerk.errors import MissingExtraError
from bildwerk.geometry import plan_layout
from bildwerk.registry import backends
from bildwerk.testing.common import OPTIONAL_MODULES, assert_json, hide_modules, package_names

PALETTE = {"background": "#e8e2d8", "primary": "#1f3a5f", "accent": "#e07a5f"}


class BackendContract:
    """Tests every :class:`~bildwerk.backends.base.GenerationBackend` must pass.

    Subclass it in a ``Test…`` class, set :attr:`registered_name` and implement
    :meth:`make_backend`; override :meth:`params` when requests need settings (a model),
    and set :attr:`extra_modules` to the imports your optional extra provides::

        class TestMyBackend(BackendContract):
            registered_name = "mine"            # its name in ``bildwerk.backends``
            extra_modules = ("mylib",)          # hidden to simulate a missing extra
            def make_backend(self): return MyBackend()

    Requests are tiny (:attr:`size`). A backend whose capabilities say ``deterministic``
    must give the same pixels for the same request, from the same or a fresh instance.
    """

    registered_name: ClassVar[str] = ""
    extra_modules: ClassVar[tuple[str, ...]] = ()
    """Imports the backend's extra provides; empty when it needs none (it must then work
    with every module of bildwerk's extras hidden)."""
    secrets: ClassVar[tuple[str, ...]] = ()
    """Strings (API keys) that must never appear in params, name, version or repr."""
    size: ClassVar[tuple[int, int]] = (64, 64)

    def make_backend(self) -> GenerationBackend:
        """A new backend instance, as the registry would build it."""
        raise NotImplementedError

    def params(self) -> Mapping[str, Any]:
        """``SceneRequest.params`` for the test requests (the planner's settings)."""
        return {}

    def request(self, seed: int) -> SceneRequest:
        """One small scene request; different seeds differ only in the seed."""
        width, height = self.size
        return SceneRequest(
            key=f"contract-{seed}",
            prompt="a product photo on a podium",
            negative_prompt="blurry, text",
            slots={},
            seed=seed,
            width=width,
            height=height,
            palette=PALETTE,
            layout=plan_layout(width, height, Insets(), 0.05),
            params=dict(self.params()),
        )

    def forget_models(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Drop process-wide caches (loaded libraries, models) for the rest of the test, so
        a hidden extra is noticed; use ``monkeypatch`` so they come back afterwards."""

    # ------------------------------------------------------------------ helpers

    def _generate(self, backend: GenerationBackend, batch: Sequence[SceneRequest]) -> list[Any]:
        """``batch`` in chunks of the backend's ``max_batch``, as the runner hands them."""
        step = max(1, backend.capabilities.max_batch)
        out: list[Any] = []
        for start in range(0, len(batch), step):
            chunk = list(batch[start : start + step])
            made = backend.generate(chunk)
            assert len(made) == len(chunk), "generate must return one scene per request"
            out.extend(made)
        return out

    def _check_scene(self, made: Any, request: SceneRequest) -> None:
        assert isinstance(made, Generated)
        assert made.image.mode == "RGB", f"scene mode {made.image.mode}, not RGB"
        assert made.image.size == (request.width, request.height)
        fx, fy = made.focal
        assert 0.0 <= fx <= 1.0 and 0.0 <= fy <= 1.0, f"focal {made.focal} outside the image"
        if made.product_box is not None:
            box = made.product_box
            assert 0 <= box.x0 < box.x1 <= request.width, box
            assert 0 <= box.y0 < box.y1 <= request.height, box
        assert_json(made.params, f"{self.registered_name}: Generated.params")
        self._no_secrets(json.dumps(made.params), "params")

    def _no_secrets(self, text: str, where: str) -> None:
        for secret in self.secrets:
            assert secret not in text, f"a secret appears in the backend's {where}"

    # ------------------------------------------------------------------ tests

    def test_name_version_and_capabilities(self) -> None:
        backend = self.make_backend()
        assert isinstance(backend, GenerationBackend)
        assert backend.name == self.registered_name
        assert isinstance(backend.version, str) and backend.version.strip()
        caps = backend.capabilities
        assert isinstance(caps, Capabilities) and caps.max_batch >= 1
        factory = backends.load(self.registered_name)
        if isinstance(factory, type):
            assert isinstance(backend, factory), f"'{self.registered_name}' names {factory}"
        for text, where in ((backend.name, "name"), (backend.version, "version")):
            self._no_secrets(text, where)
        self._no_secrets(repr(backend), "repr")

    def test_one_scene_per_request_in_order(self) -> None:
        backend = self.make_backend()
        requests = [self.request(1), self.request(2), self.request(3)]
        made = self._generate(backend, requests)
        for scene, request in zip(made, requests, strict=True):
            self._check_scene(scene, request)

    def test_same_request_same_pixels(self) -> None:
        backend = self.make_backend()
        if not backend.capabilities.deterministic:
            pytest.skip(f"{self.registered_name} declares itself not deterministic")
        # the same batch each time: batched maths may round differently from single
        # images, which is why a backend records its batch-mates for reproduction
        batch = [self.request(1), self.request(2)]
        first, other = self._generate(backend, batch)
        again = self._generate(backend, batch)[0]
        fresh = self._generate(self.make_backend(), batch)[0]
        pixels = first.image.tobytes()
        assert again.image.tobytes() == pixels, "same request, same instance: other pixels"
        assert fresh.image.tobytes() == pixels, "same request, new instance: other pixels"
        assert again.params == first.params == fresh.params
        assert (again.focal, again.product_box) == (first.focal, first.product_box)
        assert other.image.tobytes() != pixels, "the seed must change the scene"

    def test_missing_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        request = self.request(1)
        if not self.extra_modules:
            hide_modules(monkeypatch, OPTIONAL_MODULES)
            self.forget_models(monkeypatch)
            (made,) = self._generate(self.make_backend(), [request])
            self._check_scene(made, request)
            return
        hide_modules(monkeypatch, self.extra_modules)
        self.forget_models(monkeypatch)
        with pytest.raises(MissingExtraError) as err:
            self.make_backend().generate([request])
        names = package_names(self.extra_modules)
        assert any(name in str(err.value) for name in names), str(err.value)
        assert "pip install" in str(err.value)
