"""The web app end to end in a real headless Chromium (Playwright for Python driving
Debian's ``/usr/bin/chromium``), against a real server and queue worker on 127.0.0.1:
a creator starts a run from the page and watches it finish (reloading midway), a
reviewer decides with the keyboard while a second reviewer sees the decisions arrive,
compares two creatives, a publisher publishes, the audit page shows it all, and
axe-core finds no serious or critical violation on any page."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bildwerk.accounts import service
from bildwerk.catalog.audit import verify
from bildwerk.catalog.models import AuditEntry
from bildwerk.publish.keys import dev_init
from bildwerk.web.app import create_app
from bildwerk.workspace import Workspace
from tests.publish import audit as auditors
from tests.publish import browser
from tests.web.server import serving
from tests.web.test_api_flows import BRIEF

PASSWORD = "correct horse battery"
USERS = {"ana": ["creator"], "ben": ["reviewer"], "cy": ["reviewer"], "pia": ["publisher"],
         "root": ["admin"]}  # fmt: skip
TIMEOUT_MS = 180_000


@pytest.fixture
def served(workspace_dir: Path) -> Iterator[tuple[str, Workspace]]:
    why = auditors.missing()
    if why:
        pytest.skip(why)
    dev_init(workspace_dir, org="acme")
    product = sorted(p.stem for p in (workspace_dir / "assets" / "products").glob("*.png"))[0]
    (workspace_dir / "campaigns" / "flow.yaml").write_text(BRIEF.format(product=product))
    app = create_app(workspace_dir)
    ws: Workspace = app.state.workspace
    for name, roles in USERS.items():
        service.add_user(ws.db, name, roles, password=PASSWORD, actor="setup")
    worker = threading.Thread(target=lambda: ws.work(max_runs=1, poll=0.2, workers=1), daemon=True)
    worker.start()
    with serving(app) as base:
        yield base, ws


def _login(browser_: Any, base: str, name: str, *, bypass_csp: bool = False) -> Any:
    context = browser_.new_context(base_url=base, viewport={"width": 1280, "height": 900},
                                   bypass_csp=bypass_csp)  # fmt: skip
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto("/")
    assert "/login" in page.url  # sent to log in first
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/$"))
    return page


def _axe(page: Any, paths: list[str]) -> list[str]:
    """Serious or critical axe-core violations on each page (the auditor's context lets
    the injected axe script past the app's CSP; the flows above ran under it)."""
    out = []
    for path in dict.fromkeys(paths):
        page.goto(path)
        page.add_script_tag(path=str(auditors.AXE_JS))
        result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
        out += [f"{path}: {v}" for v in auditors.serious(result["violations"])]
    return out


def test_review_and_publish_in_the_browser(served: tuple[str, Workspace]) -> None:
    from playwright.sync_api import sync_playwright

    base, ws = served
    pages: list[str] = []

    def seen(page: Any) -> None:
        pages.append(page.url.removeprefix(base))

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=browser.find_chromium(),
                                     args=["--no-sandbox"])  # fmt: skip
        try:
            # a creator plans and starts the run, and watches it finish
            ana = _login(chromium, base, "ana")
            seen(ana)
            ana.click("text=New run")
            ana.select_option("#brief", "campaigns/flow.yaml")
            ana.click("text=Show the plan")
            ana.wait_for_selector("text=Submit the run")
            assert "4 creatives" in ana.inner_text("main").replace("\n", " ")
            seen(ana)
            ana.click("text=Submit the run")
            ana.wait_for_url(re.compile(r"/runs/\d{8}-"))
            run_id = ana.url.rsplit("/", 1)[-1]
            ana.reload()  # a reload midway follows the progress again
            ana.wait_for_selector(".card", timeout=TIMEOUT_MS)  # the page reloads at the end
            assert ana.inner_text(f'[data-status-of="{run_id}"]') == "done"
            assert ana.get_attribute("progress", "value") == "4"

            # a second reviewer watches while the first decides with the keyboard
            cy = _login(chromium, base, "cy")
            cy.goto(f"/runs/{run_id}")
            ben = _login(chromium, base, "ben")
            ben.goto(f"/runs/{run_id}")
            seen(ben)
            for _ in range(3):
                ben.keyboard.press("j")
                ben.keyboard.press("a")
                ben.wait_for_function("n => document.querySelectorAll('.card.state-approved')"
                                      ".length >= n", arg=_ + 1)  # fmt: skip
            ben.keyboard.press("j")
            ben.keyboard.press("r")
            ben.click("#reject-dialog [data-reason='logo wrong']")
            ben.click("#reject-dialog button[value=ok]")
            ben.wait_for_selector(".card.state-rejected")
            cy.wait_for_function(
                "() => document.querySelectorAll('.card.state-approved').length === 3 &&"
                " document.querySelectorAll('.card.state-rejected').length === 1"
            )
            ben.keyboard.press("?")
            assert ben.is_visible("#keys-dialog")
            ben.keyboard.press("Escape")

            # compare two
            ben.keyboard.press("k")
            ben.keyboard.press("c")
            ben.keyboard.press("j")
            ben.keyboard.press("c")
            ben.keyboard.press("Shift+C")
            ben.wait_for_url(re.compile(r"/compare\?id="))
            assert ben.locator("[data-pane]").count() == 2
            ben.check("[data-overlay]")
            ben.fill("[data-wipe]", "30")
            ben.click("[data-zoom=in]")
            transforms = ben.eval_on_selector_all(
                "[data-layer]", "ls => ls.map(l => l.style.transform)"
            )
            assert len(set(transforms)) == 1 and "scale(1.5)" in transforms[0]  # zoom in sync
            seen(ben)
            ben.click("figcaption a >> nth=0")
            ben.wait_for_selector("text=How it was made")
            seen(ben)

            # a publisher publishes what was approved
            pia = _login(chromium, base, "pia")
            pia.click("text=Publish")
            seen(pia)
            pia.click(f"tr:has-text('{run_id}') button")
            pia.wait_for_selector("text=3 published")

            root = _login(chromium, base, "root")
            root.click("text=Audit")
            text = root.inner_text("main")
            assert "Chain verified" in text and "asset.published" in text
            assert re.search(r"decision\.approved\s+ben", text)
            seen(root)
            auditor = _login(chromium, base, "root", bypass_csp=True)
            problems = _axe(auditor, pages)
            auditor.context.clear_cookies()
            problems += _axe(auditor, ["/login"])
        finally:
            chromium.close()
    assert len(set(pages)) >= 7 and not problems, problems
    with ws.db.session(write=False) as s:  # everything they did is in the verified chain
        assert verify(s).ok
        done = {(e.type, e.actor) for e in s.query(AuditEntry)}
    assert {("run.queued", "ana"), ("decision.approved", "ben"), ("decision.rejected", "ben"),
            ("asset.published", "pia")} <= done  # fmt: skip
