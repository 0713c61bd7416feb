"""Atomic writes: whole files or the old ones, writer-owned temp names, exact modes."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from bildwerk.atomicio import (
    atomic_write_bytes,
    atomic_write_text,
    sha256_bytes,
    sha256_file,
    temp_owner,
    temp_path,
)


def test_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_text_is_utf8(tmp_path: Path) -> None:
    target = tmp_path / "t.txt"
    atomic_write_text(target, "Grüße\n")
    assert target.read_bytes() == "Grüße\n".encode()


def test_default_mode_follows_umask_and_explicit_mode_is_exact(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "plain", b"x")
        atomic_write_bytes(tmp_path / "secret", b"k", mode=0o600)
        atomic_write_bytes(tmp_path / "wide", b"w", mode=0o664)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "plain").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "wide").stat().st_mode) == 0o664


def test_failed_write_keeps_old_bytes_and_removes_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk gone"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_temp_names_carry_their_writer(tmp_path: Path) -> None:
    tmp = temp_path(tmp_path / "x.json")
    assert tmp.parent == tmp_path
    assert temp_owner(tmp) == os.getpid()
    assert temp_owner(tmp_path / "x.json") is None
    assert temp_path(tmp_path / "x.json") != tmp


def test_hashes_match_hashlib(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    f = tmp_path / "big"
    f.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_bytes(data) == expected
    assert sha256_file(f) == expected
