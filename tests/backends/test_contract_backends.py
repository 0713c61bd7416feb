"""Every built-in generation backend passes the backend contract of ``bildwerk.testing``:
studio, diffusers (a tiny random SD 1.x built in code) and the remote APIs (against the
local fake in ``tests/fakes_remote.py``)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from bildwerk.backends.openai_images import OpenAIImagesBackend
from bildwerk.backends.remote import RetryPolicy
from bildwerk.backends.stability import StabilityBackend
from bildwerk.backends.studio import StudioBackend
from bildwerk.testing import BackendContract
from bildwerk.testing.common import extra_modules
from tests.backends.fakes_remote import FakeImageAPI

pytestmark = pytest.mark.timeout(120)

HAS_DIFFUSION = all(importlib.util.find_spec(m) for m in ("torch", "diffusers", "transformers"))


class TestStudio(BackendContract):
    registered_name = "studio"

    def make_backend(self) -> StudioBackend:
        return StudioBackend()


# --------------------------------------------------------------------------- diffusers


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A tiny SD 1.x folder, and torch on one thread (a shared 2-core runner)."""
    if not HAS_DIFFUSION:
        pytest.skip("needs the diffusion extra")
    from bildwerk.backends.diffusion.libs import libs
    from bildwerk.testing import tiny_sd15

    torch = libs().torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tiny_sd15(tmp_path_factory.mktemp("contract-sd15") / "sd15")
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pipelines(tiny_model: Path) -> Any:
    """One pipeline cache for the module: a new backend instance reuses the loaded model
    (as the registry's instances do), so the tests load it once."""
    from bildwerk.backends.diffusion.libs import libs
    from bildwerk.backends.diffusion.pipelines import PipelineCache

    return PipelineCache(libs(), max_models=1)


class TestDiffusers(BackendContract):
    registered_name = "diffusers"
    extra_modules = extra_modules("diffusion")

    @pytest.fixture(autouse=True)
    def _model(self, tiny_model: Path, pipelines: Any) -> None:
        self.model = tiny_model
        self.pipelines = pipelines

    def make_backend(self) -> Any:
        from bildwerk.backends.diffusers import DiffusersBackend

        return DiffusersBackend(self.pipelines)

    def params(self) -> Mapping[str, Any]:
        model = {
            "name": "tiny-sd15",
            "path": str(self.model),
            "sha256": "sha-tiny",
            "architecture": "sd15",
            "format": "diffusers",
        }
        return {"generation": {"model": model, "steps": 2, "guidance": 5.0}}


# --------------------------------------------------------------------------- remote


@pytest.fixture(scope="module")
def fake_api() -> Iterator[FakeImageAPI]:
    with FakeImageAPI() as api:
        yield api
    assert not api.violations, api.violations


class RemoteContract(BackendContract):
    """The remote backends against the fake: no waiting between retries, no key files."""

    kind: type[Any]
    secrets = ("sk-test-SECRET-0123456789abcdefXYZ",)

    @pytest.fixture(autouse=True)
    def _api(self, fake_api: FakeImageAPI) -> None:
        assert fake_api.api_key in self.secrets
        self.api = fake_api

    def make_backend(self) -> Any:
        return self.kind(
            api_key=self.api.api_key,
            base_url=self.api.base_url,
            sleep=lambda seconds: None,
            retry=RetryPolicy(max_attempts=2, base=0.01, cap=0.01),
            read_timeout=10.0,
            connect_timeout=2.0,
            environ={},
        )


class TestOpenAI(RemoteContract):
    registered_name = "openai"
    kind = OpenAIImagesBackend


class TestStability(RemoteContract):
    registered_name = "stability"
    kind = StabilityBackend
