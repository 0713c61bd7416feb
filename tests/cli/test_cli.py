"""The CLI as a user meets it: commands, --json, exit codes, and bad input that changes
nothing on disk."""

from __future__ import annotations

import json
import shutil
import sqlite3
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

from bildwerk.blobs import sha256_file
from bildwerk.cli import main


def cli(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["bildwerk", *args])
    with pytest.raises(SystemExit) as info:
        main()
    captured = capsys.readouterr()
    code = info.value.code if isinstance(info.value.code, int) else 0
    return code, captured.out, captured.err


def snapshot(root: Path) -> dict[str, Any]:
    """Logical state of catalog and blob store (SQLite's -wal/-shm files don't count)."""
    state: dict[str, Any] = {"blobs": {}, "db": None}
    blobs = root / ".bildwerk" / "blobs"
    if blobs.is_dir():
        state["blobs"] = {
            str(p.relative_to(blobs)): sha256_file(p)
            for p in sorted(blobs.rglob("*"))
            if p.is_file()
        }
    db = root / ".bildwerk" / "catalog.db"
    if db.exists():
        with sqlite3.connect(db) as conn:
            state["db"] = list(conn.iterdump())
    return state


@pytest.fixture(scope="module")
def ran_workspace(tmp_path_factory: pytest.TempPathFactory, template_workspace: Path) -> Path:
    """A workspace with one finished small run, so bad input meets a real catalog."""
    from bildwerk import Workspace
    from tests.conftest import SMALL_BRIEF

    root = tmp_path_factory.mktemp("ran") / "ws"
    shutil.copytree(template_workspace, root)
    product = sorted(p.stem for p in (root / "assets" / "products").glob("*.png"))[0]
    (root / "campaigns" / "small.yaml").write_text(SMALL_BRIEF.format(product=product))
    Workspace(root).run(root / "campaigns" / "small.yaml", workers=1)
    return root


@pytest.fixture
def ws(ran_workspace: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "ws"
    shutil.copytree(ran_workspace, dest)
    return dest


def bad_png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def brief_with(ws: Path, old: str, new: str) -> Path:
    src = (ws / "campaigns" / "small.yaml").read_text(encoding="utf-8")
    assert old in src
    path = ws / "campaigns" / "bad.yaml"
    path.write_text(src.replace(old, new), encoding="utf-8")
    return path


def product_path(ws: Path) -> Path:
    return sorted((ws / "assets" / "products").glob("*.png"))[0]


CASES = {
    "malformed_yaml": (
        lambda ws: brief_with(
            ws, "channels: [display_mrec, og_image]", "channels: [display_mrec, og_image"
        ),
        ["malformed YAML"],
    ),
    "unknown_key": (
        lambda ws: brief_with(ws, "backend: studio", "backend: studio\nmood: x"),
        ["bad.yaml:3", "mood", "unknown key"],
    ),
    "wrong_type": (
        lambda ws: brief_with(ws, "seeds: {base: 5, count: 1}", "seeds: {base: 5, count: lots}"),
        ["seeds", "integer"],
    ),
    "slot_without_values": (
        lambda ws: brief_with(ws, "on a {surface}", "on a {surface} {x}"),
        ["prompt.template", "'{x}'"],
    ),
    "empty_slot": (
        lambda ws: brief_with(ws, "surface: [pastel podium]", "surface: []"),
        ["prompt.slots.surface", "is empty"],
    ),
    "unknown_channel": (
        lambda ws: brief_with(ws, "[display_mrec, og_image]", "[display_mrec, tiktok]"),
        ["channels.1", "unknown channel preset 'tiktok'"],
    ),
    "missing_product": (
        lambda ws: brief_with(ws, "../assets/products/", "../assets/nope/"),
        ["products.", "not found"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_brief_exits_2_and_changes_nothing(
    case: str, ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make, needles = CASES[case]
    brief = make(ws)
    before = snapshot(ws)
    code, out, err = cli(["run", str(brief), "--workspace", str(ws)], capsys, monkeypatch)
    assert code == 2, (out, err)
    assert "Traceback" not in err and str(brief) in err
    for needle in needles:
        assert needle in err, err
    assert snapshot(ws) == before
    runs_before = len(list((ws / "runs").iterdir()))
    assert runs_before == 1  # the good run only; the bad one left no folder


@pytest.mark.parametrize("content", ["text", "truncated", "huge"])
def test_bad_product_image(
    content: str, ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = product_path(ws)
    good = target.read_bytes()
    data = {
        "text": b"this is not an image\n",
        "truncated": good[: len(good) // 2],
        "huge": bad_png_header(30_000, 30_000),
    }[content]
    bad = ws / "assets" / "products" / "bad.png"
    bad.write_bytes(data)
    brief = brief_with(ws, f"../assets/products/{target.name}", "../assets/products/bad.png")
    before = snapshot(ws)
    code, _, err = cli(["run", str(brief), "-w", str(ws)], capsys, monkeypatch)
    assert code == 2 and "Traceback" not in err
    assert "bad.png" in err and "bad.yaml" in err
    if content == "huge":
        assert "900" in err and "max_megapixels" in err
    assert snapshot(ws) == before


def test_not_utf8_brief(
    ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = ws / "campaigns" / "latin1.yaml"
    src = (ws / "campaigns" / "small.yaml").read_text(encoding="utf-8")
    path.write_bytes(
        src.replace('"Fresh drop"', '"Frische Brötchen"').split("  ar-AE")[0].encode("latin-1")
        + b""
    )
    code, _, err = cli(["plan", str(path), "-w", str(ws)], capsys, monkeypatch)
    assert code == 2 and "not valid UTF-8" in err and "latin1.yaml:" in err


def test_missing_brand_font(
    ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    brand = ws / "brand" / "brand.yaml"
    brand.write_text(
        brand.read_text(encoding="utf-8").replace(
            "fonts: {}", "fonts: {headline: fonts/Missing-Bold.ttf}"
        ),
        encoding="utf-8",
    )
    before = snapshot(ws)
    code, _, err = cli(
        ["run", str(ws / "campaigns" / "small.yaml"), "-w", str(ws)], capsys, monkeypatch
    )
    assert code == 2 and "Missing-Bold.ttf" in err and "brand.yaml" in err
    assert snapshot(ws) == before


def test_long_headline_is_a_qa_warning_not_a_crash(
    ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    brief = brief_with(
        ws, '"Fresh drop"', '"The freshest drop of the whole summer season is here now for you"'
    )
    code, out, err = cli(
        ["run", str(brief), "-w", str(ws), "--json", "--workers", "1"], capsys, monkeypatch
    )
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    manifest = json.loads(Path(summary["manifest"]).read_text(encoding="utf-8"))
    mrec = [
        v
        for v in manifest["variants"]
        if v["channel"] == "display_mrec" and v["locale"] == "en-US" and v["segment"] == "a"
    ]
    assert mrec
    fit = [c for v in mrec for c in v["qa"]["checks"] if c["name"] == "text_fit"]
    assert fit and all(c["verdict"] == "warn" and c["reason"] for c in fit)
    assert all(v["qa"]["status"] in ("warn", "fail") for v in mrec)


def test_commands_and_json(
    ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    brief = str(ws / "campaigns" / "small.yaml")
    code, out, _ = cli(["plan", brief, "-w", str(ws), "--json"], capsys, monkeypatch)
    plan = json.loads(out)
    assert code == 0 and plan["variants"] == 8 and plan["cached"] == 8 and plan["to_make"] == 0
    code, out, _ = cli(["run", brief, "-w", str(ws), "--json"], capsys, monkeypatch)
    summary = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and summary["cached"] == 8 and summary["generated"] == 0
    assert Path(summary["manifest"]).is_file()
    code, out, _ = cli(["runs", "list", "-w", str(ws), "--json"], capsys, monkeypatch)
    runs = json.loads(out)
    assert [r["status"] for r in runs] == ["done", "done"]
    code, out, _ = cli(
        ["runs", "show", summary["run_id"], "-w", str(ws), "--json"], capsys, monkeypatch
    )
    assert {j["status"] for j in json.loads(out)["jobs"]} == {"cached"}
    code, out, _ = cli(
        ["assets", "list", "-w", str(ws), "--kind", "creative", "--json"], capsys, monkeypatch
    )
    creatives = json.loads(out)
    assert len(creatives) == 8
    code, out, _ = cli(
        ["assets", "show", creatives[0]["id"], "-w", str(ws), "--json"], capsys, monkeypatch
    )
    info = json.loads(out)
    assert {r["format"] for r in info["renditions"]} == {"avif", "webp", "jpeg"}
    assert any(link["relation"] == "scene_of" for link in info["lineage"])
    code, out, _ = cli(["report", summary["run_id"], "-w", str(ws)], capsys, monkeypatch)
    assert out.strip().endswith("report.html") and Path(out.strip()).is_file()
    code, _, err = cli(["runs", "show", "nope", "-w", str(ws)], capsys, monkeypatch)
    assert code == 2 and "no run 'nope'" in err


def test_assets_import(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    good = tmp_path / "shot.jpg"
    Image.new("CMYK", (64, 48), (0, 255, 0, 0)).save(good)
    text = tmp_path / "notes.png"
    text.write_text("hello")
    before = snapshot(ws)
    code, _, err = cli(
        ["assets", "import", str(good), str(text), "-w", str(ws)], capsys, monkeypatch
    )
    assert code == 2 and "notes.png" in err
    assert snapshot(ws) == before  # one bad file imports nothing
    code, out, _ = cli(
        ["assets", "import", str(good), "--kind", "reference", "-w", str(ws), "--json"],
        capsys,
        monkeypatch,
    )
    rows = json.loads(out)
    assert code == 0 and rows[0]["kind"] == "reference" and rows[0]["width"] == 64
    code, out, _ = cli(
        ["assets", "import", str(good), "--kind", "reference", "-w", str(ws), "--json"],
        capsys,
        monkeypatch,
    )
    assert json.loads(out)[0]["created"] is False


def test_workspace_discovery_and_missing_workspace(
    tmp_path: Path,
    ws: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BILDWERK_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(["runs", "list"], capsys, monkeypatch)
    assert code == 2 and "bildwerk.yaml" in err and "bildwerk init" in err
    monkeypatch.chdir(ws / "campaigns")
    code, out, _ = cli(["runs", "list", "--json"], capsys, monkeypatch)
    assert code == 0 and len(json.loads(out)) == 1
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BILDWERK_WORKSPACE", str(ws))
    code, out, _ = cli(["runs", "list", "--json"], capsys, monkeypatch)
    assert code == 0 and len(json.loads(out)) == 1


def test_console_script_no_traceback(ws: Path) -> None:
    """The installed entry point, as a separate process."""
    exe = Path(sys.executable).with_name("bildwerk")
    proc = subprocess.run(
        [str(exe), "plan", str(ws / "campaigns" / "nope.yaml"), "-w", str(ws)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "file not found" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_reproduce_is_bit_identical(
    ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = cli(
        ["assets", "list", "-w", str(ws), "--kind", "creative", "--json"], capsys, monkeypatch
    )
    creative = json.loads(out)[0]["id"]
    code, out, err = cli(["reproduce", creative, "-w", str(ws), "--json"], capsys, monkeypatch)
    result = json.loads(out)
    assert code == 0, err
    assert result["scene"]["identical"] and result["master"]["identical"]
    # a changed brand kit is noticed rather than reported as a pixel difference
    brand = ws / "brand" / "brand.yaml"
    brand.write_text(brand.read_text(encoding="utf-8").replace("#e4572e", "#00aa00"))
    code, out, _ = cli(["reproduce", creative, "-w", str(ws), "--json"], capsys, monkeypatch)
    result = json.loads(out)
    assert code == 0 and result["master"] is None and "brand kit changed" in result["note"]
