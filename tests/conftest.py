"""Shared fixtures: scaffolded workspaces, the manifest contract, Postgres when reachable."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bildwerk import netguard
from bildwerk.scaffold import init_workspace

REPO = Path(__file__).resolve().parents[1]
SHARED_SCHEMA = REPO.parent / "shared" / "contracts" / "run-manifest.schema.json"
LOCAL_SCHEMA = Path(__file__).with_name("contracts") / "run-manifest.schema.json"


def manifest_schema() -> dict[str, Any]:
    """The shared contract when the checkout has ../shared beside it, else the copy kept
    in tests/contracts (test_contracts.py checks the two are identical)."""
    path = SHARED_SCHEMA if SHARED_SCHEMA.is_file() else LOCAL_SCHEMA
    return json.loads(path.read_text(encoding="utf-8"))


LOOPBACK_ONLY = netguard.NetPolicy.build(["127.0.0.1"])
"""Test servers run on 127.0.0.1 and nowhere else: the one inside address tests may reach."""


@pytest.fixture(autouse=True)
def _loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with the network guard allowing 127.0.0.1 only (a workspace a
    test opens replaces it with its own ``network:`` settings)."""
    monkeypatch.setattr(netguard, "_policy", LOOPBACK_ONLY)
    monkeypatch.setenv(netguard.ENV, LOOPBACK_ONLY.to_json())


def allow_loopback(workspace: Path) -> None:
    """Put ``network.allow_hosts: [127.0.0.1]`` first in a workspace's bildwerk.yaml (first:
    tests append targets to the file's end), for workspaces that talk to 127.0.0.1."""
    path = workspace / "bildwerk.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text('network:\n  allow_hosts: ["127.0.0.1"]\n\n' + text, encoding="utf-8")


@pytest.fixture(scope="session")
def template_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One scaffolded workspace; tests copy it instead of drawing samples again."""
    return init_workspace(tmp_path_factory.mktemp("tpl") / "acme", name="acme")


@pytest.fixture
def workspace_dir(template_workspace: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "ws"
    shutil.copytree(template_workspace, dest)
    return dest


SMALL_BRIEF = """\
campaign: small-test
backend: studio
segments:
  - id: a
  - id: b
    copy:
      en-US: {{headline: "Only for B"}}
locales:
  en-US: {{headline: "Fresh drop", subline: "New colours this week", cta: "Shop now"}}
  ar-AE: {{headline: "وصل حديثاً", subline: "ألوان جديدة هذا الأسبوع", cta: "تسوّق الآن"}}
channels: [display_mrec, og_image]
prompt:
  template: "packshot of the {{product}} on a {{surface}}"
  negative: "text"
  slots:
    product: [{product}]
    surface: [pastel podium]
product_slot: product
products:
  {product}: ../assets/products/{product}.png
seeds: {{base: 5, count: 1}}
"""


@pytest.fixture
def small_brief(workspace_dir: Path) -> Path:
    products = sorted(p.stem for p in (workspace_dir / "assets" / "products").glob("*.png"))
    path = workspace_dir / "campaigns" / "small.yaml"
    path.write_text(SMALL_BRIEF.format(product=products[0]), encoding="utf-8")
    return path


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the PostgreSQL named by BILDWERK_TEST_POSTGRES_URL (or the local
    server at 127.0.0.1:5432); skipped when none is reachable, failed instead when
    BILDWERK_REQUIRE_POSTGRES=1 (CI must not pass by skipping)."""
    required = os.environ.get("BILDWERK_REQUIRE_POSTGRES") == "1"
    sqlalchemy = pytest.importorskip("sqlalchemy")
    if required:
        import psycopg  # noqa: F401 - an ImportError fails the test
    else:
        pytest.importorskip("psycopg")
    base = os.environ.get(
        "BILDWERK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    name = f"bildwerk_test_{os.getpid()}_{os.urandom(3).hex()}"
    admin = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        admin.dispose()
        if required:
            pytest.fail(f"BILDWERK_REQUIRE_POSTGRES=1 but no PostgreSQL at {base}: {exc}")
        pytest.skip(f"no PostgreSQL reachable at {base}: {type(exc).__name__}")
    url = base.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


# Skips that are right even in CI: they depend on what the machine is, not on what it
# lacks. Anything else skipped under BILDWERK_NO_SKIPS=1 (set by .ci/run) fails, so a CI
# run never passes by skipping a tool, service or extra this machine kind provides.
ALLOWED_SKIPS = (
    "root reads anything",  # permission tests are meaningless as root
    "mounting a tmpfs needs root",  # the full-disk loop, on users' machines
    "spandrel is not installed",  # an opt-in extra `make test` does not install
    "declares itself not deterministic",  # remote APIs: no same-pixels contract
)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or os.environ.get("BILDWERK_NO_SKIPS") != "1":
        return
    if hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr)
    if any(allowed in reason for allowed in ALLOWED_SKIPS):
        return
    report.outcome = "failed"
    report.longrepr = f"skipped, but BILDWERK_NO_SKIPS=1 forbids it: {reason}"


@pytest.fixture(params=["sqlite", "postgres"])
def catalog_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A fresh catalog (``bildwerk.catalog.db.Database``) on SQLite and on PostgreSQL."""
    from bildwerk.catalog.db import Database

    url = (
        f"sqlite:///{tmp_path / 'catalog.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    database = Database(url)
    yield database
    database.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With ``make test``'s ``--dist loadgroup``, tests sharing a module-scoped fixture (a
    demo run, a published site) stay on one worker, so it is built once; every other test
    goes wherever a worker is free, so long tests of one module run side by side."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        scopes = {
            fixturedef.scope
            for fixturedefs in (info.name2fixturedefs.values() if info else ())
            for fixturedef in fixturedefs
        }
        if scopes & {"module", "class"}:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
