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
    from bildwerk.publish.c2pa_sign import sign_rendition
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
    signed = sign_rendition(
        stamped,
        "jpeg",
        signer=signer,
        title="Summer, bottled.",
        digital_source_type=meta.digital_source_type,
        author="Acme",
        master=None,
        master_title=None,
    )
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
