"""Schemathesis fuzzes every operation of the web API's OpenAPI schema for a fixed budget:
no input may make the app answer 5xx (or raise), and every answer must be one the schema
declares (status code, content type, headers, body). The hand-written API tests check the
flows we thought of; this checks the inputs nobody thought of, and that the published
schema is one a generated client can trust.

The app runs in-process (ASGI) over a scaffolded SQLite workspace holding a synthetic run,
an admin whose API token every request sends (an admin reaches every route), and a
sacrificial viewer with a token of its own. Half the generated requests get real ids in
their path (and a real brief in their body), so routes do more than answer 404. The
PostgreSQL catalog is covered by the other web tests; the schema and handlers are shared.

Inputs that once broke the app are replayed on every run (``test_found_inputs``): the
fuzzer's budget is small and does not draw them each time.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bildwerk.accounts import service
from bildwerk.testing.catalog_rows import fill_run
from bildwerk.web.app import create_app

ADMIN = "admin"
TARGET = "fuzz-target"
"""A viewer whose account and token the fuzzer may change, disable or revoke: real ids in
paths name it, never the admin whose token every request sends."""
RUN = "run-synthetic"
BRIEF = "campaigns/summer-sale.yaml"
"""The brief ``bildwerk init`` scaffolds."""
EXAMPLES = 25
"""Generated requests per operation (fuzzing phase): the file runs in well under 2 min."""
SEED = 20250101
"""A fixed seed: the same requests on every run, so a failure reproduces."""
STREAMS = ["/api/v1/decisions/stream", "/api/v1/runs/{run_id}/events/stream"]
"""Server-Sent Events, fuzzed with ``seconds=0``: they would stream for up to 600 s."""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
"""Stateless checks of one answer against the schema. Left out: checks that judge what
the app accepts (negative_data_rejection, positive_data_acceptance) and stateful ones
(use_after_free, ensure_resource_availability), which need links the schema lacks."""


@dataclass(frozen=True)
class Fuzzed:
    """The app under test, the admin's auth header, and real objects for paths."""

    app: FastAPI
    headers: dict[str, str]
    creatives: list[str]
    token_id: str


@pytest.fixture(scope="module")
def fuzzed(template_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    from schemathesis.python import asgi

    root = tmp_path_factory.mktemp("fuzz") / "ws"
    shutil.copytree(template_workspace, root)
    app = create_app(root)
    db = app.state.workspace.db
    service.add_user(db, ADMIN, ["admin"], password=None, actor="setup")
    service.add_user(db, TARGET, ["viewer"], password=None, actor="setup")
    _, secret = service.create_token(db, ADMIN, actor="setup")
    target_token, _ = service.create_token(db, TARGET, actor="setup")
    creatives = fill_run(db, 20, run_id=RUN, submitted_by=ADMIN)
    yield Fuzzed(app, {"Authorization": f"Bearer {secret}"}, creatives, target_token.id)
    asgi.shutdown_lifespans()  # the app's lifespan, started by schemathesis: feeds closed
    app.state.jobs.shutdown(wait=True, cancel_futures=True)  # a reproduce still running


@pytest.fixture(scope="module")
def api_schema(fuzzed: Fuzzed) -> Any:
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            # the outcome must not depend on this machine's load (too_slow); the other
            # health checks judge schemathesis' strategies, not the app
            "suppress-health-check": ["all"],
            "headers": fuzzed.headers,
            "request-timeout": 30,
            "generation": {"max-examples": EXAMPLES, "database": "none"},
            "operations": [{"include-path": STREAMS, "parameters": {"query.seconds": 0}}],
        }
    )
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", fuzzed.app, config=config)


# Logging out is left out: with a token it ends nothing, but a route that exists to end
# the caller's access has no place in a fuzz run. Revoking tokens and changing users stay
# in: the fuzzer cannot guess the admin's token id (16 random hex digits), and real ids
# and the guard in the test point those routes at TARGET, never at the admin.
schema = schemathesis.pytest.from_fixture("api_schema").exclude(
    method="DELETE", path="/api/v1/session"
)


def _use_real_objects(case: schemathesis.Case[Any], fuzzed: Fuzzed, pick: int) -> None:
    """Point the case at objects that exist (the fuzzer never guesses their ids)."""
    real = {
        "run_id": RUN,
        "creative_id": fuzzed.creatives[pick % len(fuzzed.creatives)],
        "name": TARGET,
        "token_id": fuzzed.token_id,
    }
    params = case.path_parameters or {}
    for name in params:
        if name in real:
            params[name] = real[name]
    if isinstance(case.body, dict) and "brief" in case.body:
        case.body["brief"] = BRIEF


@schema.parametrize()
@schema.given(real=st.booleans(), pick=st.integers(0, 19))
def test_api_fuzz(case: schemathesis.Case[Any], real: bool, pick: int, fuzzed: Fuzzed) -> None:
    if real:
        _use_real_objects(case, fuzzed, pick)
    if case.path_parameters and case.path_parameters.get("name") == ADMIN:
        case.path_parameters["name"] = TARGET  # never the caller's own account
    case.call_and_validate(checks=CHECKS)


TOO_BIG = 2**63
"""One past SQLite's (and PostgreSQL's bigint) largest integer."""
FOUND = [
    pytest.param("GET", "/api/v1/creatives", {"query": {"offset": TOO_BIG}}, id="creatives-offset"),
    pytest.param("GET", "/api/v1/runs/{run_id}/events", {"query": {"after": TOO_BIG}},
                 id="events-after"),
    pytest.param("GET", "/api/v1/runs/{run_id}/events/stream", {"query": {"after": TOO_BIG}},
                 id="events-stream-after"),
    pytest.param("GET", "/api/v1/runs/{run_id}/events/stream",
                 {"headers": {"Last-Event-ID": str(TOO_BIG)}}, id="events-stream-last-event-id"),
    pytest.param("GET", "/api/v1/decisions/stream", {"query": {"after": TOO_BIG}},
                 id="decisions-stream-after"),
    pytest.param("GET", "/api/v1/decisions/stream", {"headers": {"Last-Event-ID": str(TOO_BIG)}},
                 id="decisions-stream-last-event-id"),
    pytest.param("POST", "/api/v1/runs", {"body": {"brief": "\x00"}}, id="runs-brief-nul"),
    pytest.param("POST", "/api/v1/plans", {"body": {"brief": "\x00"}}, id="plans-brief-nul"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "data"), FOUND)
def test_found_inputs(
    api_schema: Any, fuzzed: Fuzzed, method: str, path: str, data: dict[str, Any]
) -> None:
    """Inputs the fuzzer found that made the app fail, under the same checks."""
    operation = api_schema[path][method]
    query = dict(data.get("query", {}))
    if path in STREAMS:
        query["seconds"] = 0
    case = operation.Case(
        path_parameters={"run_id": RUN} if "{run_id}" in path else None,
        query=query or None,
        headers=data.get("headers"),
        **({"body": data["body"]} if "body" in data else {}),
    )
    case.call_and_validate(checks=CHECKS, headers=fuzzed.headers)
