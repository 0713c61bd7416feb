"""The shared HTTP retry layer: what is retried, how long it waits, when it stops."""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import formatdate

import httpx
import pytest

from bildwerk.httpretry import RetryingClient, RetryPolicy, retryable_status


def scripted(
    replies: list[int | Exception], headers: dict[str, str] | None = None
) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue: Iterator[int | Exception] = iter(replies)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        reply = next(queue)
        if isinstance(reply, Exception):
            raise reply
        return httpx.Response(reply, headers=headers or {}, request=request)

    return httpx.MockTransport(handle), seen


def client(
    transport: httpx.MockTransport,
    sleeps: list[float],
    policy: RetryPolicy | None = None,
    now: float = 1_000_000.0,
    monotonic: list[float] | None = None,
) -> RetryingClient:
    ticks = iter(monotonic or [0.0] * 100)
    return RetryingClient(
        "test",
        policy=policy or RetryPolicy(max_attempts=4, base=0.5, cap=8.0),
        timeout=httpx.Timeout(1.0),
        transport=transport,
        sleep=sleeps.append,
        random=lambda: 0.5,
        clock=lambda: now,
        monotonic=lambda: next(ticks),
    )


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_retryable_statuses(status: int) -> None:
    assert retryable_status(status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422, 302])
def test_final_statuses(status: int) -> None:
    assert not retryable_status(status)
    transport, seen = scripted([status])
    sleeps: list[float] = []
    outcome = client(transport, sleeps).send("POST", "https://api.test/x")
    assert outcome.response is not None and outcome.response.status_code == status
    assert outcome.attempts == 1 and len(seen) == 1 and sleeps == []


def test_transport_errors_and_408_are_retried_with_one_idempotency_key() -> None:
    transport, seen = scripted([httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), 408, 200])
    sleeps: list[float] = []
    outcome = client(transport, sleeps).send("POST", "https://api.test/x", idempotency_key="k1")
    assert outcome.ok and outcome.attempts == 4
    assert sleeps == [0.25, 0.5, 1.0]  # U=0.5 · min(cap, base·2^n)
    assert {r.headers["Idempotency-Key"] for r in seen} == {"k1"}


def test_exhausted_transport_errors_return_the_last_error() -> None:
    transport, seen = scripted([httpx.ConnectError("a"), httpx.ConnectError("b")])
    sleeps: list[float] = []
    outcome = client(transport, sleeps, RetryPolicy(max_attempts=2)).send("GET", "https://h/x")
    assert outcome.response is None and isinstance(outcome.error, httpx.ConnectError)
    assert str(outcome.error) == "b" and outcome.attempts == 2 and len(sleeps) == 1
    assert len(seen) == 2


def test_retry_after_on_503_as_http_date_and_capped() -> None:
    now = 1_700_000_000.0
    transport, _ = scripted([503, 200], headers={"Retry-After": formatdate(now + 5, usegmt=True)})
    sleeps: list[float] = []
    assert client(transport, sleeps, now=now).send("GET", "https://h/x").ok
    assert sleeps == [5.0]
    transport, _ = scripted([429, 200], headers={"Retry-After": "600"})
    sleeps = []
    assert client(transport, sleeps).send("GET", "https://h/x").ok
    assert sleeps == [8.0]


def test_retry_after_ignored_on_500() -> None:
    transport, _ = scripted([500, 200], headers={"Retry-After": "60"})
    sleeps: list[float] = []
    assert client(transport, sleeps).send("GET", "https://h/x").ok
    assert sleeps == [0.25]


def test_caller_can_veto_a_retry() -> None:
    transport, seen = scripted([429, 200])
    sleeps: list[float] = []
    outcome = client(transport, sleeps).send("GET", "https://h/x", may_retry=lambda r: False)
    assert outcome.response is not None and outcome.response.status_code == 429
    assert len(seen) == 1 and sleeps == []


def test_time_budget_stops_retries() -> None:
    transport, seen = scripted([500, 500, 500, 200])
    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=10, base=0.5, cap=8.0, max_elapsed=3.0)
    # started at 0; first failure seen at 1 s, second at 2.9 s (+ 0.5 s wait > 3 s budget)
    outcome = client(transport, sleeps, policy, monotonic=[0.0, 1.0, 2.9]).send(
        "GET", "https://h/x"
    )
    assert outcome.attempts == 2 and len(seen) == 2 and sleeps == [0.25]
    assert outcome.response is not None and outcome.response.status_code == 500


def test_policy_validates() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="max_elapsed"):
        RetryPolicy(max_elapsed=-1)
