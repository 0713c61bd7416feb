"""``bildwerk keys dev-init`` and ``bildwerk verify`` on a stamped rendition: content
credentials, watermark and metadata read back through the CLI."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bildwerk.cli import main

pytest.importorskip("c2pa")


def cli(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["bildwerk", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out = capsys.readouterr()
    return (info.value.code if isinstance(info.value.code, int) else 0), out.out, out.err


def test_dev_keys_then_verify_a_stamped_jpeg(
    workspace_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bildwerk.publish.c2pa_sign import sign
    from bildwerk.publish.keys import load_signer_config
    from bildwerk.publish.metadata import AssetMetadata, digital_source_type, write_metadata
    from bildwerk.watermark import embed, payload_for

    ws = str(workspace_dir)
    code, out, err = cli(["keys", "dev-init", "-w", ws, "--json"], capsys, monkeypatch)
    assert code == 0, err
    keys = json.loads(out)
    assert keys["not_for_production"] and keys["trust_anchor"].endswith("dev-root.pem")

    rng = np.random.default_rng(1)
    ramp = np.linspace(0, 1, 640)[None, :, None]
    base = 120 + 90 * ramp * np.array([1.0, 0.7, 0.4])[None, None, :] + np.zeros((480, 1, 1))
    pixels = np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)
    marked = embed(Image.fromarray(pixels), payload_for("cr_3f9a0c7e11"))
    buf = io.BytesIO()
    marked.save(buf, format="JPEG", quality=95)
    meta = AssetMetadata(
        title="Summer, bottled.",
        description="Serum on a pastel podium",
        creator="Acme",
        credit_line="Acme",
        copyright_notice="© Acme",
        web_statement="https://acme.test/l",
        licensor_url="https://acme.test",
        campaign_id="summer-sale",
        asset_id="cr_3f9a0c7e11",
        digital_source_type=digital_source_type("studio", has_product_photo=False),
    )
    stamped = write_metadata(buf.getvalue(), "jpeg", meta)
    signer = load_signer_config(Path(keys["chain"]), Path(keys["key"]))
    signed = sign(
        stamped,
        "jpeg",
        signer=signer,
        title="Summer, bottled.",
        digital_source_type=meta.digital_source_type,
        author="Acme",
        master=None,
        master_title=None,
    ).data
    path = workspace_dir / "hero.jpg"
    path.write_bytes(signed)

    code, out, err = cli(["verify", str(path), "-w", ws, "--json"], capsys, monkeypatch)
    assert code == 0, err
    report = json.loads(out)
    assert report["c2pa"]["state"] == "Trusted"
    assert report["watermark"]["hex"] == "3f9a0c7e"
    assert report["xmp"]["digital_source_type"].endswith("/algorithmicMedia")
    assert report["xmp"]["asset_id"] == "cr_3f9a0c7e11"

    bad = workspace_dir / "broken.jpg"
    bad.write_bytes(signed[: len(signed) // 3])
    code, _, err = cli(["verify", str(bad), "-w", ws], capsys, monkeypatch)
    assert code == 2 and "broken.jpg" in err and "Traceback" not in err


def _public_jpeg(ws: Path, folder: Path, url_of: str) -> Path:
    """A rendition stamped with the public profile (remote manifest), as a folder target
    lays it out; ``url_of`` is the base its sidecar's URL is published under."""
    from bildwerk.config.delivery import BUILTIN
    from bildwerk.publish.keys import dev_init
    from bildwerk.publish.metadata import AssetMetadata, digital_source_type
    from bildwerk.publish.stamp import load_identity, stamp

    if not (ws / "keys" / "dev-chain.pem").is_file():
        dev_init(ws, org="Acme")
    identity = load_identity(ws, None)
    meta = AssetMetadata(
        title="Summer, bottled.", description="Serum on a pastel podium", creator="Acme",
        credit_line="Acme", copyright_notice="© Acme", web_statement="https://acme.test/l",
        licensor_url="https://acme.test", campaign_id="summer-sale", asset_id="cr_3f9a0c7e11",
        digital_source_type=digital_source_type("diffusers", has_product_photo=False),
        generation={"prompt": "secret", "seed": 7},
    )  # fmt: skip
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (30, 120, 200)).save(buf, format="JPEG", quality=90)
    name = "summer-web-hero-320w-0123abcd.jpg"
    signed = stamp(
        buf.getvalue(), "jpeg", meta, identity=identity, author="Acme",
        profile=BUILTIN["public"], sidecar_url=f"{url_of}/{name}.c2pa",
    )  # fmt: skip
    assert signed.sidecar is not None and b"secret" not in signed.data
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(signed.data)
    (folder / f"{name}.c2pa").write_bytes(signed.sidecar)
    return folder / name


def test_verify_reads_the_sidecar_beside_the_file_and_fails_closed_without_it(
    workspace_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _public_jpeg(
        workspace_dir, workspace_dir / "public" / "img", "https://cdn.acme.test/img"
    )
    ws = str(workspace_dir)
    code, out, err = cli(["verify", str(path), "-w", ws, "--json"], capsys, monkeypatch)
    assert code == 0, err
    report = json.loads(out)
    assert report["c2pa"]["state"] == "Trusted"
    assert report["c2pa"]["manifest_from"] == str(path) + ".c2pa"
    assert report["xmp"]["provenance"] == f"https://cdn.acme.test/img/{path.name}.c2pa"
    path.with_name(path.name + ".c2pa").unlink()
    code, out, err = cli(["verify", str(path), "-w", ws], capsys, monkeypatch)
    assert code == 0, err
    assert "C2PA: Invalid" in out and "remote manifest" in out


def test_verify_fetches_a_remote_manifest_only_where_netguard_allows(
    workspace_dir: Path, tmp_path: Path
) -> None:
    import http.server
    import threading

    from bildwerk.publish.inspect import verify_file

    served = tmp_path / "served"
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0),
        lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(served)),
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        path = _public_jpeg(workspace_dir, served, base)
        alone = tmp_path / "downloaded" / path.name  # the file without its sidecar
        alone.parent.mkdir()
        alone.write_bytes(path.read_bytes())
        anchors = workspace_dir / "keys" / "dev-root.pem"
        report = verify_file(alone, trust_anchors=anchors)["c2pa"]
        assert report["state"] == "Trusted" and report["manifest_from"].startswith(base)
        (served / (path.name + ".c2pa")).unlink()  # 404: not trusted
        report = verify_file(alone, trust_anchors=anchors)["c2pa"]
        assert report["state"] == "Invalid" and "HTTP 404" in report["reason"]
    finally:
        server.shutdown()
    # an inside address the policy does not allow is never contacted
    inside = _public_jpeg(workspace_dir, tmp_path / "inside", "http://169.254.169.254/img")
    inside.with_name(inside.name + ".c2pa").unlink()
    report = verify_file(inside, trust_anchors=workspace_dir / "keys" / "dev-root.pem")["c2pa"]
    assert (
        report["state"] == "Invalid"
        and "refusing to connect to 169.254.169.254" in report["reason"]
    )
