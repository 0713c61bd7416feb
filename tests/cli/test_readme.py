"""The README's examples are kept true by running them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from bildwerk.config.brief import load_brief, resolve_channels
from bildwerk.errors import ConfigError
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_readme_brief_is_valid(tmp_path: Path) -> None:
    brief_yaml = next(b for b in blocks("yaml") if b.startswith("campaign:"))
    path = tmp_path / "campaigns" / "brief.yaml"
    path.parent.mkdir()
    path.write_text(brief_yaml, encoding="utf-8")
    brief, doc = load_brief(path)
    names = [c.name for c in resolve_channels(brief, doc)]
    assert names[:5] == [
        "instagram_feed",
        "instagram_story",
        "web_hero",
        "display_mrec",
        "og_image",
    ]
    assert brief.direction("ar-AE") == "rtl"


def test_readme_generation_block_is_valid(tmp_path: Path) -> None:
    gen = next(b for b in blocks("yaml") if b.startswith("generation:"))
    base = next(b for b in blocks("yaml") if b.startswith("campaign:"))
    path = tmp_path / "b.yaml"
    path.write_text(base + gen, encoding="utf-8")
    brief, _ = load_brief(path)
    assert brief.generation.for_channel("web_hero").steps == 6
    assert brief.generation.loras[0].weight == 0.8


def test_readme_error_example_is_what_bildwerk_prints(tmp_path: Path) -> None:
    base = next(b for b in blocks("yaml") if b.startswith("campaign:"))
    path = tmp_path / "b.yaml"
    path.write_text(base.replace("  - og_image ", "  - tiktok "), encoding="utf-8")
    brief, doc = load_brief(path)
    with pytest.raises(ConfigError) as info:
        resolve_channels(brief, doc)
    shown = next(line for line in README.splitlines() if line.startswith("error: "))
    expected = shown.split(": ", 2)[2]  # after 'error: FILE:LINE'
    assert str(info.value).split(": ", 1)[1].startswith(expected.split(" → ")[0].strip())


def test_python_api_example_names_exist() -> None:
    import bildwerk

    code = next(b for b in blocks("python"))
    for name in re.findall(r"from bildwerk import (\w+)", code):
        assert hasattr(bildwerk, name)


def test_every_command_in_the_readme_exists() -> None:
    """Each `bildwerk CMD [SUB]` the usage block lists is a real command."""
    import typer.main

    from bildwerk.cli import app

    root: Any = typer.main.get_command(app)
    usage = next(b for b in blocks("sh") if "bildwerk init my-brand" in b)
    seen = 0
    for line in usage.splitlines():
        for words in re.findall(r"bildwerk ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)", line):
            name, _, sub = words.partition(" ")
            command = root.commands.get(name)
            assert command is not None, f"README names 'bildwerk {name}', which does not exist"
            if hasattr(command, "commands") and sub:
                assert sub in command.commands, f"README names 'bildwerk {name} {sub}'"
            seen += 1
    assert seen > 20
