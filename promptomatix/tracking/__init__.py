"""Experiment tracking. `--track mlflow[:URI]` logs runs to MLflow (imported only when used)."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote, unquote

from promptomatix.errors import ConfigurationError
from promptomatix.sessions import SessionStore


def parse_track(value: str) -> tuple[str, str | None]:
    """`mlflow` → ("mlflow", None: MLflow's own default / $MLFLOW_TRACKING_URI); `mlflow:URI` → ("mlflow", URI)."""
    if not isinstance(value, str):  # (track=123 was "'int' object has no attribute 'partition'")
        raise ConfigurationError(f"track must be a string, got {type(value).__name__}",
                                 hint='pass track="mlflow" or track="mlflow:URI"')  # fmt: skip
    kind, _, uri = value.partition(":")
    if kind.strip().lower() != "mlflow":
        raise ConfigurationError(f"unknown tracker {kind!r}", hint="use --track mlflow or --track mlflow:URI")
    _check_store_scheme(uri.strip())
    return "mlflow", uri.strip() or None


#: URI schemes MLflow has a tracking store for (a `+driver` suffix is SQLAlchemy's); a plugin adds its own.
_MLFLOW_SCHEMES = {"file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks", "databricks-uc",
                   "uc"}  # fmt: skip


def _check_store_scheme(uri: str) -> None:
    """A scheme MLflow has no store for (`mlflow:ftp://x`) is a wrong value, refused without importing mlflow (it
    was exit 1 after mlflow loaded). A plain path, a drive letter, `user:pw@host` and a plugin's scheme pass."""
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.\-]*)://", uri)  # (`user:pw@host` has no scheme: not a scheme)
    if not match:
        return
    scheme = match.group(1).lower()
    if scheme.split("+", 1)[0] in _MLFLOW_SCHEMES or scheme in _plugin_schemes():
        return
    raise ConfigurationError(f"MLflow has no tracking store for {scheme}: URIs",
                             hint="use mlflow:http://HOST:PORT, mlflow:sqlite:///FILE.db or mlflow:PATH")  # fmt: skip


def _plugin_schemes() -> set[str]:
    """Schemes an installed MLflow plugin registers a tracking store for (its entry points; mlflow not imported)."""
    from importlib.metadata import entry_points

    try:
        return {ep.name.lower() for ep in entry_points(group="mlflow.tracking_store")}
    except Exception:
        return set()


def track_secrets(value: str) -> list[str]:
    """The credentials a `--track` value carries, taken literally: the userinfo before the last `@` (with a `/`
    or `#` in the password, or no `scheme://`, URL parsers misplace it) and its password part."""
    _, _, uri = value.partition(":")
    rest = re.sub(r"^[A-Za-z][A-Za-z0-9+.\-]*://", "", uri.strip())
    if "@" not in rest:
        return []
    userinfo = rest.rpartition("@")[0]
    password = userinfo.partition(":")[2]
    found = [userinfo, password, unquote(userinfo), unquote(password), quote(password, safe="")]
    return sorted({f for f in found if f}, key=len, reverse=True)


def redact_track(text: str, value: str | None) -> str:
    """`text` without the `--track` value's credentials (and without any URL's, as every message we show)."""
    from promptomatix.lm.urls import redact_text

    return redact_text(text, *(track_secrets(value) if value else []))


def check_tracking(value: str) -> None:
    """Before a run: the tracker is known, mlflow imports, and the store answers (an unsupported URI or a server
    that is down fails here, before any model call, not after the run has been paid for)."""
    from promptomatix.tracking.mlflow import probe

    _, uri = parse_track(value)
    try:
        probe(uri)
    except ConfigurationError:
        raise
    except Exception as e:
        raise ConfigurationError(
            f"cannot use the MLflow tracking store {_shown(value)}: {redact_track(f'{type(e).__name__}: {e}', value)}",
            hint="start the tracking server or fix the URI (mlflow:http://HOST:PORT, mlflow:sqlite:///FILE.db), "
            "or leave out --track",
        ) from None


def _shown(value: str) -> str:
    from promptomatix.sessions.urls import strip_url_credentials

    uri = parse_track(value)[1] or "(MLflow's default)"
    return redact_track(strip_url_credentials(uri), value)


def make_tracker(value: str, *, experiment: str = "promptomatix") -> Callable[[SessionStore, str, str], str | None]:
    """A batch tracker: (store, session id, job name) → logs that session. Checks that mlflow imports, up front."""
    from promptomatix.tracking.mlflow import log_session

    _, uri = parse_track(value)
    check_tracking(value)  # imports mlflow (a clear error when it is missing) and asks the store once

    def track(store: SessionStore, session_id: str, job: str) -> str | None:
        try:
            tracked = log_session(store, session_id, uri=uri, experiment=experiment, run_name=job)
        except Exception as e:  # the message may quote the URI as given: its password goes before it is shown
            raise RuntimeError(redact_track(f"{type(e).__name__}: {e}", value)) from None
        return tracked.run_id

    return track


def track_session(value: str, store: SessionStore, session_id: str, *, name: str | None = None) -> object:
    """Log one session to the tracker named by `value` (`mlflow` or `mlflow:URI`); returns the tracked run."""
    from promptomatix.tracking.mlflow import log_session

    _, uri = parse_track(value)
    return log_session(store, session_id, uri=uri, run_name=name)


__all__ = ["check_tracking", "make_tracker", "parse_track", "redact_track", "track_secrets", "track_session"]
