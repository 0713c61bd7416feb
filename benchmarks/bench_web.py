"""Web app: server time of the gallery page and the creatives API over a synthetic catalog,
and the latency of live progress (Server-Sent Events) with many clients on one run.

Setup: a scaffolded workspace (SQLite catalog) filled with
:func:`bildwerk.testing.catalog_rows.fill_run` (rows only, no blobs): a run of 1,000
creatives for the gallery and a run of 10,000 for the API, 11,000 creatives in the catalog.
Requests carry an admin's API token (``Authorization: Bearer``).

1. Gallery ``GET /runs/<run>`` (1,000 creatives on one page), in-process through
   ``fastapi.testclient.TestClient``: the time of ``client.get`` (routing, auth,
   middleware, the catalog query, the template, the response). Baselines in the same run,
   the cases interleaved: ``GET /api/v1/me`` (the cheapest authenticated request: auth and
   middleware) and the catalog query alone (``usecases.creatives`` with facets, as the
   page calls it); page / query is what the template and the rest of the request add.
   Target p50 <= 150 ms.
2. ``GET /api/v1/creatives?run=<10k run>&limit=100`` and filtered variants
   (``failing=contrast``, ``q=serum``, ``slot=product:serum``), in-process as above, against
   ``GET /api/v1/me``; the unfiltered request also against its catalog query alone.
   Target p50 <= 50 ms.
3. ``--clients`` SSE clients following one stream on a real uvicorn server on 127.0.0.1
   (in a child process by default, so the clients do not share its interpreter lock on a
   small machine; ``--server thread`` runs it in a thread of this process). The benchmark
   writes the stream itself (``bildwerk.events.EventStream``): one event before the
   clients connect, then ``--events`` events every ``--interval`` ms, each flushed to the
   catalog at once, then ``run.finished``. Each client (httpx, asyncio) checks it got
   every event exactly once and in order; latency = receive time - the event's ``at``
   (emit time), over the live events. It includes the server's catalog poll
   (``bildwerk.web.feeds.POLL``): about half a poll on average. Baseline: one client,
   the same run, same server. Also reported: the lag of ``run.finished`` (median over
   clients: a backlog shows here), the spread of one event's arrival over the clients
   (first to last), and the CPU the server process and this process (clients and
   writer) used while the events streamed, as a share of one core.

Medians and p95 of ``--repeat`` timed requests per case after 3 warm-ups; a case whose
requests take seconds stops after ``--case-budget`` seconds (``n`` says how many it got).

    .venv/bin/python benchmarks/bench_web.py [--repeat 30] [--clients 100] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi.testclient import TestClient

from bildwerk.accounts import service
from bildwerk.catalog.db import Database
from bildwerk.catalog.repo.creatives import CreativeFilter
from bildwerk.events import EventStream
from bildwerk.scaffold import init_workspace
from bildwerk.testing.catalog_rows import fill_run
from bildwerk.usecases import creatives as uc
from bildwerk.web.app import create_app
from bildwerk.web.feeds import POLL
from bildwerk.workspace import Workspace

HOST = "127.0.0.1"
USER = "bench"
GALLERY_RUN, GALLERY_N = "run-gallery-1k", 1_000
API_RUN, API_N = "run-api-10k", 10_000
WARMUPS = 3
GALLERY_TARGET_MS, API_TARGET_MS = 150.0, 50.0
API_VARIANTS = (
    ("all", ""),
    ("failing=contrast", "&failing=contrast"),
    ("q=serum", "&q=serum"),
    ("slot=product:serum", "&slot=product:serum"),
)

# --- statistics --------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values``, linear between closest ranks."""
    xs = sorted(values)
    if not xs:
        return math.nan
    k = (len(xs) - 1) * q
    lo = math.floor(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def stats_ms(seconds: Sequence[float]) -> dict[str, float]:
    """n, p50, p95 and max of ``seconds``, in milliseconds."""
    return {
        "n": float(len(seconds)),
        "p50_ms": percentile(seconds, 0.5) * 1000,
        "p95_ms": percentile(seconds, 0.95) * 1000,
        "max_ms": max(seconds, default=math.nan) * 1000,
    }


# --- the workspace -----------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    root: Path
    token: str
    seconds: float  # scaffolding and filling the catalog

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_workspace(parent: Path) -> Setup:
    """A scaffolded workspace with the gallery's and the API's runs and a token."""
    started = time.perf_counter()
    root = init_workspace(parent / "bench", name="bench")
    db = Workspace(root).db
    fill_run(db, GALLERY_N, run_id=GALLERY_RUN, campaign="bench-gallery", submitted_by=USER)
    fill_run(db, API_N, run_id=API_RUN, campaign="bench-api", submitted_by=USER)
    service.add_user(db, USER, ["admin"], password=None, actor=USER)
    _, token = service.create_token(db, USER, actor=USER)
    return Setup(root, token, time.perf_counter() - started)


# --- in-process request timing -----------------------------------------------------------

Case = Callable[[], int]
"""One timed operation; returns the bytes it produced (0 where there is no response)."""


def get(client: TestClient, path: str) -> Case:
    def call() -> int:
        reply = client.get(path)
        if reply.status_code != 200:
            raise SystemExit(f"GET {path}: {reply.status_code} {reply.text[:300]}")
        return len(reply.content)

    return call


def query(ws: Workspace, f: CreativeFilter, *, facets: bool) -> Case:
    def call() -> int:
        page = uc.creatives(ws, f, viewer=USER, with_facets=facets)
        return len(page.items)

    return call


@dataclass
class Timed:
    seconds: list[float] = field(default_factory=list)
    size: int = 0
    warmup_s: list[float] = field(default_factory=list)
    slow: bool = False  # one cold call, too slow to repeat


def time_cases(cases: dict[str, Case], repeat: int, budget_s: float) -> dict[str, Timed]:
    """``repeat`` timings of each case, interleaved (the order rotates each round, so load
    from elsewhere falls on every case alike), after :data:`WARMUPS` untimed calls. A case
    stops early once its timed calls have taken ``budget_s``; one whose first call alone
    takes a quarter of that is not called again: that call is its one timing (``slow``)."""
    out = {name: Timed() for name in cases}
    for name, case in cases.items():
        timed = out[name]
        for _ in range(WARMUPS):
            started = time.perf_counter()
            timed.size = case()
            timed.warmup_s.append(time.perf_counter() - started)
            if timed.warmup_s[-1] > budget_s / 4:
                timed.slow, timed.seconds = True, timed.warmup_s[:1]
                break
            if timed.warmup_s[-1] > 1.0:
                break
    names = list(cases)
    for i in range(repeat):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            timed = out[name]
            if timed.slow or (timed.seconds and sum(timed.seconds) >= budget_s):
                continue
            started = time.perf_counter()
            timed.size = cases[name]()
            timed.seconds.append(time.perf_counter() - started)
    return out


def measure_requests(setup: Setup, repeat: int, budget_s: float) -> dict[str, Any]:
    app = create_app(setup.root)
    ws: Workspace = app.state.workspace
    with TestClient(app, base_url=f"http://{HOST}", headers=setup.headers) as client:
        gallery = time_cases(
            {
                "me": get(client, "/api/v1/me"),
                "gallery": get(client, f"/runs/{GALLERY_RUN}"),
                "gallery_query": query(
                    ws, CreativeFilter(run_id=GALLERY_RUN, limit=GALLERY_N), facets=True
                ),
            },
            repeat,
            budget_s,
        )
        cases: dict[str, Case] = {"me": get(client, "/api/v1/me")}
        for name, extra in API_VARIANTS:
            cases[f"api {name}"] = get(client, f"/api/v1/creatives?run={API_RUN}&limit=100{extra}")
        cases["api all query"] = query(ws, CreativeFilter(run_id=API_RUN, limit=100), facets=False)
        api = time_cases(cases, repeat, budget_s)
    return {
        "gallery": {name: _timed_json(t) for name, t in gallery.items()},
        "api": {name: _timed_json(t) for name, t in api.items()},
    }


def _timed_json(t: Timed) -> dict[str, Any]:
    return {
        **stats_ms(t.seconds),
        "bytes_or_rows": t.size,
        "warmup_ms": [round(s * 1000, 1) for s in t.warmup_s],
        "slow": t.slow,
    }


# --- SSE on a real server ----------------------------------------------------------------


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far (Linux ``/proc``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    """CPU seconds this process (every thread) has used so far."""
    t = os.times()
    return t.user + t.system


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _serve_forever(root: str, port: int) -> None:
    """The child process: the app on uvicorn until terminated."""
    config = uvicorn.Config(create_app(Path(root)), host=HOST, port=port, log_level="warning")
    uvicorn.Server(config).run()


def _wait_until_up(base: str, headers: dict[str, str], deadline: float) -> None:
    while True:
        try:
            if httpx.get(f"{base}/api/v1/me", headers=headers, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"the server at {base} did not come up")
        time.sleep(0.1)


@dataclass(frozen=True)
class Server:
    base: str
    cpu: Callable[[], float]  # the server's CPU seconds so far (NaN in thread mode)


@contextlib.contextmanager
def server(setup: Setup, mode: str) -> Iterator[Server]:
    """A uvicorn server of the workspace's app on 127.0.0.1."""
    port = free_port()
    base = f"http://{HOST}:{port}"
    if mode == "process":
        ctx = multiprocessing.get_context("spawn")
        proc = ctx.Process(target=_serve_forever, args=(str(setup.root), port), daemon=True)
        proc.start()
        try:
            _wait_until_up(base, setup.headers, time.monotonic() + 60)
            pid = proc.pid
            assert pid is not None
            yield Server(base, lambda: process_cpu(pid))
        finally:
            proc.terminate()
            proc.join(15)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        return
    config = uvicorn.Config(create_app(setup.root), host=HOST, port=port, log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, name="bench-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not uv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise SystemExit("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield Server(base, lambda: math.nan)
    finally:
        uv.should_exit = True
        thread.join(15)


@dataclass
class Follower:
    ids: list[int] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    received: dict[int, float] = field(default_factory=dict)  # seq -> time.time()
    emitted: dict[int, float] = field(default_factory=dict)  # seq -> the event's ``at``
    error: str = ""


async def follow(
    client: httpx.AsyncClient, url: str, out: Follower, connected: asyncio.Event
) -> None:
    """Read one SSE stream to its ``run.finished``, recording each event's arrival."""
    try:
        async with client.stream("GET", url) as reply:
            if reply.status_code != 200:
                out.error = f"HTTP {reply.status_code}"
                return
            seq, kind, data = 0, "", ""
            async for line in reply.aiter_lines():
                if line:
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "id":
                        seq = int(value)
                    elif name == "event":
                        kind = value
                    elif name == "data":
                        data += value
                    continue
                if not data:  # the retry line, or a keepalive comment
                    continue
                now = time.time()
                out.ids.append(seq)
                out.kinds.append(kind)
                out.received[seq] = now
                out.emitted[seq] = datetime.fromisoformat(json.loads(data)["at"]).timestamp()
                connected.set()
                if kind == "run.finished":
                    return
                seq, kind, data = 0, "", ""
        out.error = out.error or "stream ended before run.finished"
    except Exception as exc:  # reported per client, not raised
        out.error = f"{type(exc).__name__}: {exc}"
    finally:
        connected.set()  # connected, or never will be: do not keep the others waiting


def emit(stream: EventStream, events: int, interval: float) -> None:
    """``events`` job events at a steady rate, each flushed at once, then the end."""
    start = time.monotonic()
    for i in range(events):
        delay = start + i * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        stream.emit("job.finished", stage="render", job=f"j{i}", total=events)
        stream.flush_now()
    time.sleep(max(0.0, start + events * interval - time.monotonic()))
    stream.emit("run.finished", data={"status": "done"})
    stream.flush_now()


async def follow_many(
    srv: Server,
    setup: Setup,
    db: Database,
    stream_id: str,
    clients: int,
    events: int,
    interval: float,
) -> dict[str, Any]:
    stream = EventStream(db, stream_id)
    stream.emit("run.started", total=events)  # before anyone connects: the stream exists
    stream.flush_now()
    url = f"{srv.base}/api/v1/runs/{stream_id}/events/stream?seconds=300"
    limits = httpx.Limits(max_connections=clients + 5, max_keepalive_connections=0)
    timeout = httpx.Timeout(60.0)
    followers = [Follower() for _ in range(clients)]
    connected = [asyncio.Event() for _ in range(clients)]
    async with httpx.AsyncClient(
        headers=setup.headers, limits=limits, timeout=timeout, trust_env=False
    ) as client:
        tasks = [
            asyncio.create_task(follow(client, url, f, c))
            for f, c in zip(followers, connected, strict=True)
        ]
        t0 = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(c.wait() for c in connected)), 120)
        connect_s = time.perf_counter() - t0
        t1, server_cpu, client_cpu = time.perf_counter(), srv.cpu(), own_cpu()
        await asyncio.to_thread(emit, stream, events, interval)
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
        wall = time.perf_counter() - t1
        server_cpu, client_cpu = srv.cpu() - server_cpu, own_cpu() - client_cpu
    out = summarize_followers(followers, events, connect_s)
    # from the first live event to the last client's run.finished
    out.update(live_s=wall, server_cpu_s=server_cpu, client_cpu_s=client_cpu)
    return out


def summarize_followers(followers: list[Follower], events: int, connect_s: float) -> dict[str, Any]:
    expected = list(range(1, events + 3))  # run.started, the job events, run.finished
    complete = sum(f.ids == expected and not f.error for f in followers)
    duplicates = sum(len(f.ids) - len(set(f.ids)) for f in followers)
    missing = sum(len(set(expected) - set(f.ids)) for f in followers)
    out_of_order = sum(f.ids != sorted(f.ids) for f in followers)
    errors = sorted({f.error for f in followers if f.error})
    live = range(2, events + 3)  # everything emitted after the clients connected
    latencies = [f.received[s] - f.emitted[s] for f in followers for s in live if s in f.received]
    spread = []  # per event: from the first client's receipt to the last's
    for s in live:
        got = [f.received[s] for f in followers if s in f.received]
        if got:
            spread.append(max(got) - min(got))
    last = events + 2
    end_lag = [f.received[last] - f.emitted[last] for f in followers if last in f.received]
    return {
        "clients": len(followers),
        "events": len(expected),
        "complete": complete,
        "duplicates": duplicates,
        "missing": missing,
        "out_of_order": out_of_order,
        "errors": errors,
        "connect_s": connect_s,
        "latency": stats_ms(latencies),
        "spread": stats_ms(spread),
        "end_lag_ms": percentile(end_lag, 0.5) * 1000,  # run.finished, median over clients
    }


def measure_sse(
    setup: Setup, clients: int, events: int, interval: float, mode: str
) -> dict[str, Any]:
    db = Workspace(setup.root).db
    out: dict[str, Any] = {
        "events": events,
        "interval_ms": interval * 1000,
        "poll_ms": POLL * 1000,
        "server": mode,
    }
    with server(setup, mode) as srv:
        # baseline first, then the crowd; fresh streams (and feed pollers) for each
        out["one"] = asyncio.run(follow_many(srv, setup, db, "bench-sse-one", 1, events, interval))
        out["many"] = asyncio.run(
            follow_many(srv, setup, db, f"bench-sse-{clients}", clients, events, interval)
        )
    return out


# --- report ------------------------------------------------------------------------------


def measure(
    repeat: int,
    clients: int,
    events: int,
    interval: float,
    budget_s: float,
    mode: str,
    parts: Sequence[str] = ("requests", "sse"),
) -> dict[str, Any]:
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    parts_out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        setup = make_workspace(Path(tmp))
        if "requests" in parts:
            parts_out.update(measure_requests(setup, repeat, budget_s))
        if "sse" in parts:
            parts_out["sse"] = measure_sse(setup, clients, events, interval, mode)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "python": platform.python_version(),
        "commit": _commit(),
        "command": " ".join([".venv/bin/python", "benchmarks/bench_web.py", *sys.argv[1:]]),
        "catalog": {
            "creatives": GALLERY_N + API_N,
            "gallery_run": GALLERY_N,
            "api_run": API_N,
            "setup_s": setup.seconds,
        },
        "repeat": repeat,
        **parts_out,
        "total_s": time.perf_counter() - started,
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def _commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).parent,
            check=False,
        )
    except OSError:
        return ""
    return done.stdout.strip()


def _row(label: str, s: dict[str, Any], ratio: str = "", verdict: str = "") -> str:
    return (
        f"  {label:<46}{int(s['n']):>4}{s['p50_ms']:>9.1f}{s['p95_ms']:>9.1f}{s['max_ms']:>10.1f}"
        f"  {ratio:<24}{verdict}"
    )


def _verdict(s: dict[str, Any], target: float) -> str:
    verdict = f"{'ok' if s['p50_ms'] <= target else 'MISS'} (<= {target:.0f})"
    return verdict + (", one cold call" if s["slow"] else "")


def _share(cpu_s: float, wall_s: float) -> str:
    return "-" if math.isnan(cpu_s) else f"{cpu_s / wall_s:.0%}"


def print_report(r: dict[str, Any]) -> None:
    cat = r["catalog"]
    print(f"web app, {r['date']}, {r['machine']}, python {r['python']}, commit {r['commit']}")
    print(
        f"catalog: {cat['creatives']:,} synthetic creatives in SQLite "
        f"(setup {cat['setup_s']:.1f} s)"
    )
    if "gallery" in r:
        _print_requests(r)
    if "sse" in r:
        _print_sse(r["sse"])
    before, after = r["load_average_1min"]
    print(f"total {r['total_s']:.0f} s, load average {before:.1f} before, {after:.1f} after")
    print(f"command: {r['command']}")


def _print_requests(r: dict[str, Any]) -> None:
    cat = r["catalog"]
    print("server time in-process (TestClient), ms:")
    head = f"  {'case':<46}{'n':>4}{'p50':>9}{'p95':>9}{'max':>10}  {'p50 ratio':<24}target"
    print(head)
    g = r["gallery"]
    me, page, q = g["me"]["p50_ms"], g["gallery"]["p50_ms"], g["gallery_query"]["p50_ms"]
    print(_row("GET /api/v1/me (baseline)", g["me"]))
    print(
        _row(
            f"GET /runs/<{cat['gallery_run']:,}> ({g['gallery']['bytes_or_rows']:,} B)",
            g["gallery"],
            f"x{page / me:.0f} me, x{page / q:.2f} query",
            _verdict(g["gallery"], GALLERY_TARGET_MS),
        )
    )
    print(_row("  its catalog query + facets (baseline)", g["gallery_query"]))
    a = r["api"]
    me = a["me"]["p50_ms"]
    print(_row("GET /api/v1/me (baseline)", a["me"]))
    for name, _ in API_VARIANTS:
        s = a[f"api {name}"]
        ratio = f"x{s['p50_ms'] / me:.0f} me"
        if name == "all":
            ratio += f", x{s['p50_ms'] / a['api all query']['p50_ms']:.2f} query"
        label = f"GET /api/v1/creatives?run=<{cat['api_run']:,}>&limit=100"
        label = label if name == "all" else f"  &{name}"
        print(_row(label, s, ratio, _verdict(s, API_TARGET_MS)))
        if name == "all":
            print(_row("  its catalog query (baseline)", a["api all query"]))


def _print_sse(sse: dict[str, Any]) -> None:
    print(
        f"SSE on uvicorn ({sse['server']}): {sse['events']} events, one every "
        f"{sse['interval_ms']:.0f} ms; the server polls the catalog every "
        f"{sse['poll_ms']:.0f} ms; latency = receipt - emit, ms:"
    )
    print(
        f"  {'clients':<10}{'complete':>10}{'dup':>5}{'miss':>6}{'order':>6}{'connect s':>10}"
        f"{'p50':>8}{'p95':>8}{'max':>8}{'end lag':>8}{'spread p50':>11}{'max':>8}"
        f"{'cpu server':>11}{'clients':>8}"
    )
    for key in ("one", "many"):
        x = sse[key]
        lat, sp = x["latency"], x["spread"]
        label = f"{x['clients']}" + (" (base)" if key == "one" else "")
        print(
            f"  {label:<10}{x['complete']:>6}/{x['clients']:<3}{x['duplicates']:>5}"
            f"{x['missing']:>6}{x['out_of_order']:>6}{x['connect_s']:>10.2f}"
            f"{lat['p50_ms']:>8.1f}{lat['p95_ms']:>8.1f}{lat['max_ms']:>8.1f}"
            f"{x['end_lag_ms']:>8.1f}{sp['p50_ms']:>11.1f}{sp['max_ms']:>8.1f}"
            f"{_share(x['server_cpu_s'], x['live_s']):>11}"
            f"{_share(x['client_cpu_s'], x['live_s']):>8}"
        )
        for error in x["errors"]:
            print(f"    error: {error}")
    one, many = sse["one"]["latency"], sse["many"]["latency"]
    print(
        f"  {sse['many']['clients']} clients / 1: p50 x{many['p50_ms'] / one['p50_ms']:.2f}, "
        f"p95 x{many['p95_ms'] / one['p95_ms']:.2f}, max x{many['max_ms'] / one['max_ms']:.2f}"
    )


def summary(r: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    if "gallery" in r:
        out["web_me_p50_ms"] = r["gallery"]["me"]["p50_ms"]
        out["web_gallery_1k_p50_ms"] = r["gallery"]["gallery"]["p50_ms"]
        out["web_gallery_1k_p95_ms"] = r["gallery"]["gallery"]["p95_ms"]
        out["web_gallery_query_p50_ms"] = r["gallery"]["gallery_query"]["p50_ms"]
        for name, _ in API_VARIANTS:
            out[f"web_api_{name.split('=')[0]}_p50_ms"] = r["api"][f"api {name}"]["p50_ms"]
    for key in ("one", "many") if "sse" in r else ():
        x = r["sse"][key]
        out[f"web_sse_{x['clients']}_latency_p50_ms"] = x["latency"]["p50_ms"]
        out[f"web_sse_{x['clients']}_latency_p95_ms"] = x["latency"]["p95_ms"]
        out[f"web_sse_{x['clients']}_complete"] = float(x["complete"])
    return out


def run(repeat: int = 30, clients: int = 100) -> dict[str, float]:
    report = measure(repeat, clients, 200, 0.010, 20.0, "process")
    print_report(report)
    return summary(report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per case")
    parser.add_argument("--clients", type=int, default=100, help="SSE clients on one stream")
    parser.add_argument("--events", type=int, default=200, help="live events to stream")
    parser.add_argument("--interval", type=float, default=10.0, help="ms between events")
    parser.add_argument(
        "--case-budget",
        type=float,
        default=20.0,
        help="stop timing a case after this many seconds of it",
    )
    parser.add_argument(
        "--server",
        choices=("process", "thread"),
        default="process",
        help="where uvicorn runs for the SSE part",
    )
    parser.add_argument(
        "--only", choices=("requests", "sse"), help="measure one part (default: both)"
    )
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    report = measure(
        max(1, args.repeat),
        max(1, args.clients),
        max(1, args.events),
        args.interval / 1000,
        args.case_budget,
        args.server,
        (args.only,) if args.only else ("requests", "sse"),
    )
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    sse = report.get("sse")
    if sse and any(sse[k]["complete"] != sse[k]["clients"] for k in ("one", "many")):
        return 1  # a client missed, repeated or reordered events
    return 0


if __name__ == "__main__":
    sys.exit(main())
