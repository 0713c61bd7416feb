"""Every error raised on purpose maps to one exit code and prints without a traceback;
a service that cannot be reached names its URL (exit 3) — including from ``reproduce``."""

from __future__ import annotations

import json
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bildwerk import cli, registry
from bildwerk.backends.remote import RefusedError, RemoteError, RemoteUserError
from bildwerk.errors import (
    BildwerkError,
    ConfigError,
    MissingExtraError,
    ServiceError,
    UserError,
)
from bildwerk.publishers import TargetRejectedError, TargetUnavailableError, WebhookTarget
from tests.backends.fakes_remote import FakeImageAPI
from tests.conftest import SMALL_BRIEF, allow_loopback


def closed_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def run_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str]
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["bildwerk", *args])
    with pytest.raises(SystemExit) as info:
        cli.main()
    captured = capsys.readouterr()
    code = info.value.code if isinstance(info.value.code, int) else 0
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UserError("bad option", hint="use --x"), 2),
        (ConfigError("brief.yaml", "unknown key", line=3, field="mood"), 2),
        (MissingExtraError("s3fs", "publish", "Publishing to S3"), 2),
        (ServiceError("no answer from http://127.0.0.1:9", url="http://127.0.0.1:9"), 3),
        (RemoteError("openai", "OpenAI Images: no answer from http://127.0.0.1:9"), 3),
        (RemoteUserError("openai", "HTTP 401", status=401, hint="check OPENAI_API_KEY"), 2),
        (RefusedError("stability", "content_filtered", "refused"), 4),
        (TargetUnavailableError("webhook http://127.0.0.1:9/hook", "gave up"), 3),
        (TargetRejectedError("webhook http://127.0.0.1:9/hook", "HTTP 404"), 2),
        (BildwerkError("the catalog and the blob store disagree"), 4),
    ],
)
def test_every_bildwerk_error_has_its_exit_code(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: BildwerkError,
    code: int,
) -> None:
    def app() -> None:
        raise error

    monkeypatch.setattr(cli, "app", app)
    got, out, err = run_main(monkeypatch, capsys, [])
    assert got == code == error.exit_code
    assert err.startswith("error: ") and error.message in err
    assert "Traceback" not in err and out == ""
    if error.hint:
        assert error.hint in err


def test_a_bug_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    def app() -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(cli, "app", app)
    with pytest.raises(KeyError):
        cli.main()


def test_exit_codes_are_distinct_per_branch() -> None:
    assert (UserError.exit_code, ServiceError.exit_code, BildwerkError.exit_code) == (2, 3, 4)
    # a publish target that is down is both a publish error and a service error
    assert issubclass(TargetUnavailableError, ServiceError)
    assert issubclass(RemoteError, ServiceError) and issubclass(RemoteUserError, UserError)


def test_webhook_at_a_closed_port_is_a_service_error_naming_its_url() -> None:
    port = closed_port()
    hook = WebhookTarget(
        f"http://127.0.0.1:{port}/cms/hook", "s3cret-value", max_attempts=2, sleep=lambda _: None
    )
    with pytest.raises(ServiceError) as info:
        hook.notify({"type": "publish", "run": "r1"})
    assert isinstance(info.value, TargetUnavailableError) and info.value.exit_code == 3
    assert f"http://127.0.0.1:{port}/cms/hook" in info.value.message
    assert "s3cret-value" not in str(info.value)
    assert info.value.hint and "reachable" in info.value.hint


# --------------------------------------------------------------------------- reproduce


@pytest.fixture
def remote_ws(
    tmp_path: Path, template_workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, FakeImageAPI]]:
    """A workspace with one creative made by the OpenAI backend against the fake API."""
    root = tmp_path / "ws"
    shutil.copytree(template_workspace, root)
    allow_loopback(root)  # the fake image API is on 127.0.0.1
    product = sorted(p.stem for p in (root / "assets" / "products").glob("*.png"))[0]
    brief = SMALL_BRIEF.format(product=product).replace("backend: studio", "backend: openai")
    brief = brief.replace("channels: [display_mrec, og_image]", "channels: [display_mrec]")
    brief = brief.replace('  - id: b\n    copy:\n      en-US: {headline: "Only for B"}\n', "")
    (root / "campaigns" / "remote.yaml").write_text(brief, encoding="utf-8")
    registry.backends.reset()  # the backend reads its URL and key when it is built
    with FakeImageAPI() as api:
        monkeypatch.setenv("OPENAI_API_KEY", api.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", api.base_url + "/v1")
        from bildwerk import Workspace

        result = Workspace(root).run(root / "campaigns" / "remote.yaml", workers=1)
        assert result.failed == 0 and result.generated > 0
        yield root, api
    registry.backends.reset()


def test_reproduce_with_the_service_down_exits_3_without_traceback(
    remote_ws: tuple[Path, FakeImageAPI],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, api = remote_ws
    code, out, _ = run_main(
        monkeypatch, capsys, ["assets", "list", "-w", str(root), "--kind", "creative", "--json"]
    )
    creative = json.loads(out)[0]["id"]
    api.__exit__(None, None, None)  # the service goes away: its port is closed now
    code, out, err = run_main(monkeypatch, capsys, ["reproduce", creative, "-w", str(root)])
    assert code == 3, err
    assert "Traceback" not in err
    assert f"no answer from {api.base_url}" in err
    assert "check the network" in err
