"""Experiment tracking. `--track mlflow[:URI]` logs runs to MLflow (imported only when used)."""

from __future__ import annotations

from collections.abc import Callable

from promptomatix.errors import ConfigurationError
from promptomatix.sessions import SessionStore


def parse_track(value: str) -> tuple[str, str | None]:
    """`mlflow` → ("mlflow", None: MLflow's own default / $MLFLOW_TRACKING_URI); `mlflow:URI` → ("mlflow", URI)."""
    kind, _, uri = value.partition(":")
    if kind.strip().lower() != "mlflow":
        raise ConfigurationError(f"unknown tracker {kind!r}", hint="use --track mlflow or --track mlflow:URI")
    return "mlflow", uri.strip() or None


def make_tracker(value: str, *, experiment: str = "promptomatix") -> Callable[[SessionStore, str, str], str | None]:
    """A batch tracker: (store, session id, job name) → logs that session. Checks that mlflow imports, up front."""
    from promptomatix.tracking.mlflow import import_mlflow, log_session

    _, uri = parse_track(value)
    import_mlflow()

    def track(store: SessionStore, session_id: str, job: str) -> str | None:
        tracked = log_session(store, session_id, uri=uri, experiment=experiment, run_name=job)
        return tracked.run_id

    return track


def track_session(value: str, store: SessionStore, session_id: str, *, name: str | None = None) -> object:
    """Log one session to the tracker named by `value` (`mlflow` or `mlflow:URI`); returns the tracked run."""
    from promptomatix.tracking.mlflow import log_session

    _, uri = parse_track(value)
    return log_session(store, session_id, uri=uri, run_name=name)


__all__ = ["make_tracker", "parse_track", "track_session"]
