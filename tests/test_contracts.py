"""The manifest schema kept in tests/contracts must match the shared contract."""

from __future__ import annotations

import json

import pytest

from tests.conftest import LOCAL_SCHEMA, SHARED_SCHEMA


def test_local_copy_matches_shared_contract() -> None:
    if not SHARED_SCHEMA.is_file():
        pytest.skip(f"{SHARED_SCHEMA} not present (checkout without ../shared beside it)")
    assert json.loads(LOCAL_SCHEMA.read_text()) == json.loads(SHARED_SCHEMA.read_text())


def test_public_api_is_explicit() -> None:
    import bildwerk

    assert sorted(bildwerk.__all__) == sorted(set(bildwerk.__all__))
    for name in bildwerk.__all__:
        assert hasattr(bildwerk, name), name
