"""The Python API: upstream's function names and kwargs, typed results, typed errors (no error dicts)."""

from __future__ import annotations

from typing import Any

from promptomatix.backends.base import ProgressFn
from promptomatix.config import RunConfig
from promptomatix.lm.boundary import ModelClient
from promptomatix.result import DryRunReport, OptimizationResult
from promptomatix.sessions import SessionStore
from promptomatix.sessions.models import Session, SessionSummary


def process_input(
    *,
    clients: dict[str, ModelClient] | None = None,
    progress: ProgressFn | None = None,
    track: str | None = None,
    **kwargs: Any,
) -> OptimizationResult | DryRunReport:
    """Optimize a prompt for a task described in `raw_input` (upstream: `human_input`).

    `temperature` and `max_tokens` cap each task-model call (upstream's meaning); `progress` receives every step
    and, while calls are made, live counter refreshes (`event.live`); steps are also logged at INFO. `track`
    (`"mlflow"` or `"mlflow:URI"`) logs the session to MLflow when the run ends; a failure to track is a note on
    the result, never a failed run.

    Accepts upstream's kwargs (model_name, model_api_key, backend, synthetic_data_size, train_data, ...) and ours
    (see RunConfig). Returns an OptimizationResult that also reads like upstream's dict:
    `r["result"]`, `r["metrics"]["optimized_prompt_score"]`, `r.best_prompt`, `r.test_score`.
    """
    from promptomatix.followup import refine
    from promptomatix.pipeline import Run

    session_id = kwargs.pop("session_id", None)
    if session_id:  # upstream passed session_id to continue a session; a missing one is an error, never a new
        # run (which went to the default sessions dir, not the one passed)
        store = SessionStore(kwargs.pop("sessions_dir", None))
        store.require(session_id)
        return refine(session_id, store=store, clients=clients, progress=progress, track=track, **kwargs)
    cfg = RunConfig.from_kwargs(**kwargs)
    return Run(cfg, clients=clients, progress=progress, track=track).execute()


def optimize_with_feedback(
    session_id: str,
    *,
    clients: dict[str, ModelClient] | None = None,
    progress: ProgressFn | None = None,
    sessions_dir: str | None = None,
    track: str | None = None,
    **overrides: Any,
) -> OptimizationResult:
    """Re-optimize a saved session from its latest version and open feedback (upstream name)."""
    from promptomatix.followup import refine

    api_key = overrides.pop("model_api_key", None) or overrides.pop("api_key", None)
    return refine(
        session_id, store=SessionStore(sessions_dir), clients=clients, progress=progress, api_key=api_key,
        track=track, **overrides,
    )  # fmt: skip


def generate_feedback(
    session_id: str, *, clients: dict[str, ModelClient] | None = None, sessions_dir: str | None = None, **kw: Any
) -> dict[str, Any]:
    """Let the teacher model critique the latest prompt's failures; stores the items as generated feedback."""
    from promptomatix.followup import generate_feedback as _generate

    return _generate(session_id, store=SessionStore(sessions_dir), clients=clients, **kw)


def resume(
    session_id: str,
    *,
    clients: dict[str, ModelClient] | None = None,
    sessions_dir: str | None = None,
    progress: ProgressFn | None = None,
    track: str | None = None,
    **overrides: Any,
) -> OptimizationResult:
    """Continue an interrupted or failed run; `overrides` supply credentials again (api_key, api_base) or a budget."""
    from promptomatix.followup import resume as _resume

    api_key = overrides.pop("model_api_key", None) or overrides.pop("api_key", None)
    api_base = overrides.pop("model_api_base", None) or overrides.pop("api_base", None)
    return _resume(
        session_id, store=SessionStore(sessions_dir), clients=clients, progress=progress, api_key=api_key,
        api_base=api_base, track=track, **overrides,
    )  # fmt: skip


def load_session(session_id: str, *, sessions_dir: str | None = None) -> Session:
    return SessionStore(sessions_dir).load(session_id)


def list_sessions(*, sessions_dir: str | None = None) -> list[SessionSummary]:
    return SessionStore(sessions_dir).list()


def save_feedback(
    text: str,
    start_offset: int,
    end_offset: int,
    feedback: str,
    prompt_id: str,
    *,
    sessions_dir: str | None = None,
) -> dict[str, Any]:
    """Upstream's `save_feedback`: a comment on a span of a session's latest prompt (`prompt_id` = session id)."""
    from promptomatix.sessions.feedback import save_feedback as _save

    return _save(text, start_offset, end_offset, feedback, prompt_id, store=SessionStore(sessions_dir))
