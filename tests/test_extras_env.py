"""The environment the ``diffusion`` extra creates works for any script, not only bildwerk.

PyPI's torchvision is a CUDA build that cannot be imported beside a CPU torch, and
diffusers/transformers import torchvision whenever it is installed. So the extra must not
pull torchvision in (spandrel, which needs it, is its own opt-in extra), and nothing may
depend on bildwerk patching it first.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _extra(name: str) -> list[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return list(data["project"]["optional-dependencies"][name])


def _dist_name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;(@]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_diffusion_extra_pulls_in_no_torchvision() -> None:
    """Walk the installed dependency tree of every package the extra names (their own
    optional extras left out, as pip leaves them out)."""
    requirements = pytest.importorskip("packaging.requirements")
    top = [_dist_name(r) for r in _extra("diffusion")]
    assert "spandrel" not in top and "torchvision" not in top
    seen: dict[str, str] = {}  # package -> the package that required it
    todo = [(name, "bildwerk[diffusion]") for name in top]
    missing = []
    while todo:
        name, parent = todo.pop()
        if name in seen:
            continue
        seen[name] = parent
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
            continue
        for text in requires:
            req = requirements.Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append((_dist_name(req.name), name))
    if set(top) & set(missing):
        pytest.skip(f"the diffusion extra is not installed here ({', '.join(missing)})")
    assert "torchvision" not in seen, f"torchvision comes in through {seen.get('torchvision')}"


@pytest.mark.timeout(600)
def test_diffusers_imports_without_bildwerk() -> None:
    """A user's own script: diffusers' pipelines and transformers' image processor import
    in a fresh interpreter that never imports bildwerk (and nothing imports it for them)."""
    if importlib.util.find_spec("diffusers") is None:
        pytest.skip("the diffusion extra is not installed")
    code = (
        "import sys\n"
        "import diffusers\n"
        "from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline\n"
        "from diffusers import ControlNetModel\n"
        "from transformers import CLIPImageProcessor\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'bildwerk'], 'bildwerk'\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=590
    )
    hint = ""
    if importlib.util.find_spec("torchvision") is not None:
        version = importlib.metadata.version("torchvision")
        hint = (
            f"\ntorchvision {version} is installed in {sys.prefix}; bildwerk's extras no longer "
            "install it (only bildwerk[spandrel] does): rebuild the environment or "
            "pip uninstall torchvision spandrel"
        )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:] + hint


def test_a_broken_torchvision_is_reported_not_patched(tmp_path: Path) -> None:
    """A torchvision that fails to import (as PyPI's CUDA build beside a CPU torch does)
    stops the diffusers backend with the fix, and bildwerk leaves it unpatched."""
    pytest.importorskip("torch")
    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "raise RuntimeError('operator torchvision::nms does not exist')\n"
    )
    code = (
        "import sys\n"
        "from bildwerk.errors import UserError\n"
        "from bildwerk.backends.diffusion.libs import libs\n"
        "try:\n"
        "    libs()\n"
        "except UserError as exc:\n"
        "    print(exc)\n"
        "print('torchvision' in sys.modules, sys.modules.get('torchvision'))\n"
    )
    src = ROOT / "src"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(src)])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "is installed but cannot be imported" in out.stdout
    assert "torchvision::nms" in out.stdout
    assert "download.pytorch.org/whl/cpu" in out.stdout
    assert out.stdout.strip().endswith("False None")  # not left as a stub in sys.modules
