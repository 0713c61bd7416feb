"""Third-party page auditors for tests: axe-core in headless Chromium (Playwright for
Python driving Debian's ``/usr/bin/chromium``) and the W3C Nu HTML checker (``vnu.jar``).

Both come from ``node_modules`` (``package.json``, installed by ``scripts/system-deps.sh
--test``); ``missing()`` says what is absent so tests can skip with the install command.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.publish import browser

REPO = Path(__file__).resolve().parents[2]
AXE_JS = REPO / "node_modules" / "axe-core" / "axe.min.js"
VNU_JAR = REPO / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
INSTALL = "scripts/system-deps.sh --test (npm ci) installs it"


def missing() -> str | None:
    """Why the audits cannot run here, else None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    if browser.find_chromium() is None:
        return browser.SKIP_REASON
    if not AXE_JS.is_file() or not VNU_JAR.is_file():
        return f"node_modules lacks axe-core or vnu-jar; {INSTALL}"
    if shutil.which("java") is None:
        return "java is not installed (the Nu checker needs it)"
    return None


def axe(url: str, *, width: int = 1280, height: int = 900, timeout_s: float = 60) -> list[Any]:
    """axe-core's violations on ``url`` (WCAG 2.x A/AA and best-practice rules)."""
    from playwright.sync_api import sync_playwright

    binary = browser.find_chromium()
    assert binary is not None
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=binary, args=["--no-sandbox"], timeout=timeout_s * 1000
        )
        try:
            page = chromium.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(timeout_s * 1000)
            page.goto(url, wait_until="load")
            page.add_script_tag(path=str(AXE_JS))
            result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
        finally:
            chromium.close()
    violations: list[Any] = result["violations"]
    return violations


def serious(violations: Sequence[Any]) -> list[str]:
    """``rule: nodes`` for every serious or critical violation."""
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:5]}"
        for v in violations
        if v.get("impact") in ("serious", "critical")
    ]


def nu_errors(files: Sequence[Path], *, timeout_s: float = 120) -> list[str]:
    """Errors the W3C Nu checker reports on ``files`` (warnings are not errors)."""
    done = subprocess.run(
        ["java", "-jar", str(VNU_JAR), "--errors-only", "--format", "json", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    messages = json.loads(done.stderr or done.stdout or '{"messages": []}')["messages"]
    return [
        f"{Path(m.get('url', '')).name}:{m.get('lastLine')}: {m['message']}"
        for m in messages
        if m.get("type") in ("error", "non-document-error")
    ]
