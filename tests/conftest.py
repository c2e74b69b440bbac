"""Shared fixtures: every test gets its own sessions dir; nothing touches the user's real store or the network."""

from __future__ import annotations

import os
import signal

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(autouse=True)
def _isolated_sessions(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTOMATIX_SESSIONS_DIR", str(tmp_path / "sessions"))
    monkeypatch.delenv("PROMPTOMATIX_DEBUG", raising=False)
    yield


@pytest.fixture
def store(tmp_path):
    """A session store of the test's own (modules with another store define their own `store`)."""
    from promptomatix.sessions import SessionStore

    return SessionStore(tmp_path / "sessions")


@pytest.fixture
def sid(store) -> str:
    """One completed session in `store`, with an initial version."""
    from promptomatix.sessions import Score

    s = store.new_session(raw_input="Classify", status="completed")
    s.add_version("Classify the review.", backend="initial", valid=Score(raw=0.5))
    store.save(s)
    return s.session_id


@pytest.fixture
def time_limit(request: pytest.FixtureRequest):
    """A test that hangs fails after its module's LIMIT_S seconds (default 240) instead of blocking the suite.
    Modules opt in with `pytestmark = pytest.mark.usefixtures("time_limit")`."""
    limit = int(getattr(request.module, "LIMIT_S", 240))

    def expired(*_):
        raise TimeoutError(f"test exceeded {limit} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(limit)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture
def with_plugin():
    """Register plugin objects in this process for one test; everything is rebuilt without them afterwards."""
    names: list[str] = []

    def add(obj: object, name: str) -> None:
        from promptomatix.plugins.manager import plugin_manager, refresh_registries

        plugin_manager().register(obj, name=name)
        names.append(name)
        refresh_registries()

    yield add
    from promptomatix.plugins.manager import plugin_manager, reset_for_tests

    for name in names:
        plugin_manager().unregister(name=name)
    reset_for_tests()
