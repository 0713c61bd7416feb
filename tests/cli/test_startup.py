"""``import bildwerk`` and ``bildwerk --help`` stay light: the heavy libraries load only
when a command needs them. Speed itself is measured in benchmarks/bench_startup.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import bildwerk

HEAVY = ("sqlalchemy", "alembic", "numpy", "PIL", "httpx", "jinja2", "fontTools", "pydantic")


def loaded_after(code: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; which heavy modules it loaded, and its output."""
    body = "".join(f"    {line}\n" for line in code.splitlines())
    probe = (
        "import json, sys\n"
        f"try:\n{body}"
        "except SystemExit as e:\n"
        "    code = e.code\n"
        "else:\n"
        "    code = 0\n"
        f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "sys.stderr.write('\\n' + json.dumps({'heavy': heavy, 'code': code}) + '\\n')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stderr.strip().splitlines()[-1])
    result["stdout"] = proc.stdout
    return result


def test_import_bildwerk_loads_no_heavy_module() -> None:
    result = loaded_after("import bildwerk\nassert bildwerk.__version__")
    assert result["heavy"] == []


def test_help_loads_no_heavy_module() -> None:
    result = loaded_after(
        "sys.argv = ['bildwerk', '--help']\nfrom bildwerk.cli import main\nmain()"
    )
    assert result["code"] == 0
    assert result["heavy"] == []
    assert "Usage" in str(result["stdout"]) and "run" in str(result["stdout"])


@pytest.mark.parametrize("name", bildwerk.__all__)
def test_every_public_name_resolves(name: str) -> None:
    value = getattr(bildwerk, name)
    assert value is not None
    if name != "__version__" and not name.isupper():
        assert getattr(value, "__name__", name) == name  # the object, not a stand-in


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Workspcae'"):
        _ = bildwerk.Workspcae  # type: ignore[attr-defined]
    assert set(bildwerk.__all__) <= set(dir(bildwerk))


def test_python_dash_m_bildwerk_is_the_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bildwerk", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "Usage" in proc.stdout
