"""Shared fixtures: every test gets its own sessions dir; nothing touches the user's real store or the network."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(autouse=True)
def _isolated_sessions(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTOMATIX_SESSIONS_DIR", str(tmp_path / "sessions"))
    monkeypatch.delenv("PROMPTOMATIX_DEBUG", raising=False)
    yield
