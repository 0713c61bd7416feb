"""`bildwerk serve` for real: the console script starts uvicorn on a workspace, answers on
127.0.0.1, refuses the API without credentials, runs a `bildwerk worker` beside it unless
told not to, and stops (worker included) on SIGINT or SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.web.server import free_port

BILDWERK = Path(sys.executable).with_name("bildwerk")  # the installed console script
STARTUP_S, SHUTDOWN_S = 30.0, 10.0


def children(pid: int) -> dict[int, str]:
    """The live child processes of ``pid`` and their command lines (Linux /proc)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == pid and fields[0] != "Z":
            found[int(stat.parent.name)] = cmdline.replace(b"\0", b" ").decode().strip()
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class Served:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc, self.url, self.log = proc, f"http://127.0.0.1:{port}", log

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, client: httpx.Client) -> None:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"serve exited early:\n{self.output()}"
            try:
                if client.get(f"{self.url}/api/v1/openapi.json").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail(f"serve did not answer within {STARTUP_S:.0f} s:\n{self.output()}")

    def stop(self, signum: int) -> None:
        """Send ``signum``; serve must shut down by itself (not die of the signal) in time."""
        self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout=SHUTDOWN_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve still running {SHUTDOWN_S:.0f} s after {signum}:\n{self.output()}")
        assert code == 0, f"serve ended with {code} instead of shutting down:\n{self.output()}"
        assert "bildwerk serve stopped" in self.output()


@pytest.fixture
def launch(workspace_dir: Path, tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start `bildwerk serve` on a free port of 127.0.0.1 in a scaffolded workspace, with
    extra arguments; a server still running at the end is killed."""
    started: list[Served] = []

    def start(*args: str) -> Served:
        assert BILDWERK.is_file(), f"no console script at {BILDWERK}"
        port, log = free_port(), tmp_path / f"serve-{len(started)}.log"
        command = [str(BILDWERK), "serve", "--port", str(port), "--workspace", str(workspace_dir)]
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                [*command, *args], stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        started.append(Served(proc, port, log))
        return started[-1]

    yield start
    for served in started:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait()


def check_api(served: Served, client: httpx.Client) -> None:
    served.wait_ready(client)
    schema = client.get(f"{served.url}/api/v1/openapi.json").json()
    assert "/api/v1/me" in schema["paths"]
    me = client.get(f"{served.url}/api/v1/me")
    assert me.status_code == 401, me.text
    assert me.headers["content-type"] == "application/problem+json"
    assert me.json()["status"] == 401


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    # no proxies from the environment: this traffic stays on 127.0.0.1
    with httpx.Client(trust_env=False, timeout=5.0) as http:
        yield http


def test_serve_without_a_worker_answers_and_stops_on_sigint(
    launch: Callable[..., Served], client: httpx.Client
) -> None:
    served = launch("--no-worker")
    check_api(served, client)
    assert children(served.proc.pid) == {}  # --no-worker: nothing beside it
    served.stop(signal.SIGINT)
    with pytest.raises(httpx.TransportError):
        client.get(f"{served.url}/api/v1/openapi.json")


def test_serve_runs_a_worker_and_stops_it_on_sigterm(
    launch: Callable[..., Served], workspace_dir: Path, client: httpx.Client
) -> None:
    served = launch()
    check_api(served, client)
    beside = children(served.proc.pid)
    workers = [pid for pid, cmd in beside.items() if "bildwerk worker --workspace" in cmd]
    assert len(workers) == 1 and str(workspace_dir) in beside[workers[0]], (
        beside,
        served.output(),
    )
    try:
        served.stop(signal.SIGTERM)
        assert not alive(workers[0]), f"the worker outlived serve:\n{served.output()}"
    finally:
        if alive(workers[0]):
            os.kill(workers[0], signal.SIGKILL)
