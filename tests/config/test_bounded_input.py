"""Hostile briefs: alias bombs, deep nesting, devices, FIFOs, oversized files and huge
channels are refused with an error naming the file, line, field and the limit — before
they can exhaust memory, recurse or hang (issue 10, item 1)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bildwerk.config.brief import load_brief, resolve_channels
from bildwerk.config.channels import MAX_MASTER_PIXELS, Channel
from bildwerk.config.yamlfile import MAX_DEPTH, MAX_VALUES, read_yaml
from bildwerk.errors import ConfigError, InputImageError
from bildwerk.imageinput import load_image

SRC = Path(__file__).resolve().parents[2] / "src"

BRIEF = """\
campaign: hostile
locales:
  en-US: {headline: Hi}
channels: [og_image]
prompt:
  template: "a {thing}"
  slots:
    thing: [cup]
"""


def run_limited(code: str, *, address_space_mb: int = 1024, timeout: float = 30) -> str:
    """Run ``code`` in a fresh interpreter under RLIMIT_AS, so a regression that expands
    an alias bomb fails with MemoryError in seconds instead of taking the machine down."""
    prelude = textwrap.dedent(
        f"""\
        import resource
        limit = {address_space_mb} * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_alias_bomb_is_refused_within_bounded_memory(tmp_path: Path) -> None:
    # nine levels of ten aliases each: 10**9 values once expanded, about 400 bytes here
    lines = ["lol0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"lol{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text(BRIEF + "\n".join(lines) + "\n", encoding="utf-8")
    assert path.stat().st_size < 1024
    out = run_limited(
        f"""
        from pathlib import Path
        from bildwerk.config.brief import load_brief
        from bildwerk.errors import ConfigError
        try:
            load_brief(Path({str(path)!r}))
        except ConfigError as exc:
            print(exc.line, exc.field, exc.message, sep="|")
        """
    )
    line, field, message = out.strip().split("|", 2)
    assert f"limit of {MAX_VALUES} values" in message and "bomb.yaml" in message
    assert int(line) >= 9 and field.startswith("lol")


def test_aliases_within_the_limit_still_work(tmp_path: Path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  z: 3\n", encoding="utf-8")
    doc = read_yaml(path)
    assert doc.data["other"] == {"x": 1, "y": 2, "z": 3}
    assert doc.line_of(("other", "z")) == 4


@pytest.mark.parametrize("flow", [True, False], ids=["flow", "block"])
def test_deep_nesting_is_a_config_error_not_a_recursion_error(tmp_path: Path, flow: bool) -> None:
    depth = 5000 if flow else 300
    nested = (
        "[" * depth + "]" * depth
        if flow
        else "\n" + "".join("  " * (i + 2) + "-\n" for i in range(depth))
    )
    path = tmp_path / "deep.yaml"
    path.write_text(BRIEF.replace("thing: [cup]", f"thing: {nested}"), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_brief(path)
    err = info.value
    assert f"limit of {MAX_DEPTH} levels" in err.message and "deep.yaml" in err.message
    assert err.field is not None and err.field.startswith("prompt.slots.thing")
    assert err.line is not None and err.line >= 8


def test_yaml_from_a_device_or_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "brief.fifo"
    os.mkfifo(fifo)
    # in a subprocess with a timeout: a regression opens the FIFO and blocks forever
    out = run_limited(
        f"""
        from pathlib import Path
        from bildwerk.config.yamlfile import read_yaml
        from bildwerk.errors import ConfigError
        for name in ("/dev/zero", {str(fifo)!r}):
            try:
                read_yaml(Path(name))
            except ConfigError as exc:
                print(exc.message)
        """,
        timeout=20,
    )
    assert "/dev/zero: is a character device, not a regular file" in out
    assert "brief.fifo: is a named pipe (FIFO), not a regular file" in out


def test_oversized_yaml_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as fh:
        fh.truncate(64 * 1024 * 1024)  # sparse: costs no disk
    with pytest.raises(ConfigError, match="is 64 MiB, over the limit of 4 MiB"):
        read_yaml(path)


def _read(brief: Path) -> object:
    from bildwerk.inputs import read_inputs

    return read_inputs(
        brief, default_brand=brief.parents[1] / "brand" / "brand.yaml", max_megapixels=64
    )


def _point_product_at(small_brief: Path, target: str) -> None:
    text = small_brief.read_text(encoding="utf-8")
    lines = [
        (line.split(":")[0] + f": {target}") if line.startswith("  ") and ".png" in line else line
        for line in text.splitlines()
    ]
    small_brief.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_product_from_dev_zero_is_refused(small_brief: Path) -> None:
    _point_product_at(small_brief, "/dev/zero")
    out = run_limited(
        f"""
        from pathlib import Path
        from bildwerk.inputs import read_inputs
        from bildwerk.errors import ConfigError
        brief = Path({str(small_brief)!r})
        try:
            read_inputs(brief, default_brand=brief.parents[1] / "brand" / "brand.yaml",
                        max_megapixels=64)
        except ConfigError as exc:
            print(exc.field, exc.line, exc.message, sep="|")
        """,
        address_space_mb=2048,
    )
    field, line, message = out.strip().split("|", 2)
    assert field.startswith("products.") and int(line) == 20
    assert "/dev/zero: is a character device, not a regular file" in message


def test_product_fifo_is_refused_without_hanging(small_brief: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "product.png"
    os.mkfifo(fifo)
    _point_product_at(small_brief, str(fifo))
    with pytest.raises(ConfigError) as info:
        _read(small_brief)
    assert "named pipe (FIFO), not a regular file" in info.value.message
    assert info.value.field is not None and info.value.field.startswith("products.")


def test_image_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    with path.open("wb") as fh:
        fh.truncate(3 * 1024 * 1024)
    with pytest.raises(InputImageError, match=r"is 3 MiB, over the limit of 2 MiB"):
        load_image(path, max_bytes=2 * 1024 * 1024)


def test_channel_pixel_area_is_bounded_with_field_and_limit(tmp_path: Path) -> None:
    path = tmp_path / "brief.yaml"
    path.write_text(
        BRIEF.replace(
            "channels: [og_image]",
            "channels:\n  - {name: huge, width: 8192, height: 8192, overrides: {density: 3}}",
        ),
        encoding="utf-8",
    )
    brief, doc = load_brief(path)
    with pytest.raises(ConfigError) as info:
        resolve_channels(brief, doc)
    err = info.value
    assert err.field == "channels.0.overrides.density" and err.line == 5  # where it was set
    assert "24576×24576" in err.message and "67.1 MP" in err.message
    assert "validation error" not in err.message


def test_channel_area_limit_allows_the_largest_slot_at_density_one() -> None:
    Channel(name="big", width=8192, height=8192)
    Channel(name="retina", width=4096, height=4096, density=2)
    with pytest.raises(ValueError, match="over the limit"):
        Channel(name="too", width=4096, height=4097, density=2)
    assert MAX_MASTER_PIXELS == 8192 * 8192
