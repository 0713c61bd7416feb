"""Issue 10.10: the README's Python example, copied verbatim into a file without a
``__main__`` guard, runs every job (spawned workers would re-run the script, so the API
falls back to running inline and says why)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from bildwerk.executors.local import InlineExecutor, main_reruns_in_workers, make_executor
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
CAMPAIGN = """\
campaign: readme
backend: studio
locales:
  en-US: {{headline: "Fresh drop"}}
channels: [display_mrec, og_image]
prompt:
  template: "packshot of the {{product}} on a podium"
  slots:
    product: [{product}]
product_slot: product
products:
  {product}: ../assets/products/{product}.png
"""


def test_readme_python_example_runs_verbatim_as_a_script(
    template_workspace: Path, tmp_path: Path
) -> None:
    code = re.findall(r"```python\n(.*?)```", README, flags=re.S)[0]
    assert "__main__" not in code  # the point: copied as is, without a guard
    ws = tmp_path / "my-brand"
    shutil.copytree(template_workspace, ws)
    product = sorted(p.stem for p in (ws / "assets" / "products").glob("*.png"))[0]
    (ws / "campaigns" / "summer-sale.yaml").write_text(  # 2 creatives, not 48: time budget
        CAMPAIGN.format(product=product), encoding="utf-8"
    )
    settings = ws / "bildwerk.yaml"
    settings.write_text(settings.read_text(encoding="utf-8") + "\nworkers: 2\n", "utf-8")
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = Path(done.stdout.strip().splitlines()[-1])
    data = json.loads(manifest.read_text(encoding="utf-8"))
    assert len(data["variants"]) == 2 and not data.get("failed")
    assert '__name__ == "__main__"' in done.stderr  # the fallback says how to get the pool


def fake_main(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, source: str) -> None:
    path = tmp_path / "script.py"
    path.write_text(source, encoding="utf-8")
    main = types.ModuleType("__main__")
    main.__file__ = str(path)
    main.__spec__ = None
    monkeypatch.setitem(sys.modules, "__main__", main)


@pytest.mark.parametrize(
    ("source", "reruns"),
    [
        ("import bildwerk\nbildwerk.Workspace('w').run('b.yaml')\n", True),
        ("def main(): ...\nif __name__ == '__main__':\n    main()\n", False),
        ("def main(): ...\nif '__main__' == __name__:\n    main()\n", False),
        ("def main(:\n", True),  # cannot tell: inline is always safe
    ],
)
def test_unguarded_scripts_are_detected(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, source: str, reruns: bool
) -> None:
    fake_main(monkeypatch, tmp_path, source)
    assert main_reruns_in_workers() is reruns


def test_unguarded_script_gets_the_inline_executor_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_main(monkeypatch, tmp_path, "print('top level')\n")
    with pytest.warns(RuntimeWarning, match="guard"):
        executor = make_executor(4)
    assert isinstance(executor, InlineExecutor)
