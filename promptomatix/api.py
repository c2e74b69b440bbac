"""The Python API: upstream's function names and kwargs, typed results, typed errors (no error dicts).

Every function raises a `PromptomatixError` subclass on failure (its hint in Python terms: `model_api_key`, not
`--api-key`), and on Ctrl-C during a run `KeyboardRunInterrupted`: a RunInterrupted and a KeyboardInterrupt.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from promptomatix.backends.base import ProgressFn
from promptomatix.config import RunConfig
from promptomatix.errors import ConfigurationError, PromptomatixError, RunInterrupted, SessionError
from promptomatix.lm.boundary import ModelClient
from promptomatix.result import DryRunReport, OptimizationResult, SessionListing
from promptomatix.sessions import SessionStore
from promptomatix.sessions.models import Session

#: kwargs that define a run's task and rows. A refine reuses the session's own, so these would be ignored there.
SPEC_AND_DATA = (
    "raw_input", "human_input", "task_description", "task_type", "input_fields", "output_fields", "labels",
    "output_format", "sample_data", "initial_prompt", "constraints", "data", "huggingface_dataset_name",
    "train_data", "valid_data", "test_data", "local_train_data_path", "local_test_data_path", "synthetic_data_size",
    "train_data_size", "valid_data_size", "test_data_size", "train_ratio", "verify_synthetic",
)  # fmt: skip


@contextmanager
def _python_errors() -> Iterator[None]:
    """Errors reach a Python caller with Python advice: the run's messages name CLI flags and commands."""
    try:
        yield
    except PromptomatixError as e:
        e.for_python()  # the same object, its hint rewritten: type, attributes and traceback stay
        raise
    except RunInterrupted as e:  # as a KeyboardInterrupt too, the Python convention for Ctrl-C
        raise e.for_python().with_traceback(e.__traceback__) from None


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
    the result, never a failed run. `session_id` names the new session, as upstream's did (letters, digits, `-`,
    `_`); an existing one is refused: `optimize_with_feedback(session_id)` continues a session.

    Accepts upstream's kwargs (model_name, model_api_key, backend, synthetic_data_size, train_data, ...) and ours
    (see RunConfig). Returns an OptimizationResult that also reads like upstream's dict:
    `r["result"]`, `r["metrics"]["optimized_prompt_score"]`, `r.best_prompt`, `r.test_score`.
    """
    from promptomatix.pipeline import Run

    with _python_errors():
        session_id = kwargs.pop("session_id", None)
        cfg = RunConfig.from_kwargs(**kwargs)
        if session_id is None:
            return Run(cfg, clients=clients, progress=progress, track=track).execute()
        return _named_run(cfg, session_id, clients=clients, progress=progress, track=track)


def _named_run(
    cfg: RunConfig,
    session_id: object,
    *,
    clients: dict[str, ModelClient] | None,
    progress: ProgressFn | None,
    track: str | None,
) -> OptimizationResult | DryRunReport:
    """A new run (or dry run) in a session named by the caller (upstream's `session_id`); the run lock is held throughout."""
    from promptomatix.pipeline import Run
    from promptomatix.run_guard import run_lock
    from promptomatix.sessions.ids import is_valid_id

    if not is_valid_id(session_id):  # the same rule as the store's: no dots or separators, never a path outside it
        shown = repr(session_id) if len(repr(session_id)) <= 80 else repr(session_id)[:60] + "…'"
        raise SessionError(f"invalid session_id {shown}: use 1-64 letters, digits, '-' or '_', starting with a "
                           "letter or digit", hint="or leave session_id out for a generated one")  # fmt: skip
    store = SessionStore(cfg.sessions_dir)
    sid = str(session_id)
    given = {k: v for k in ("train_data", "valid_data", "test_data") if (v := getattr(cfg, k)) is not None}
    fresh = Session(session_id=sid, description=(cfg.task_description or cfg.raw_input)[:200],
                    raw_input=cfg.raw_input, run_config=cfg.persistable(), status="created",
                    data={"given_rows": given} if given else {})  # fmt: skip
    try:
        store.create(fresh)
        taken_over = False
    except SessionError:  # it exists: taken over below if it never made a version
        taken_over = True
    with run_lock(store, sid, "optimize"):
        if taken_over:
            store.update(sid, lambda old: _take_over(old, fresh))
        run = Run(cfg, clients=clients, progress=progress, store=store, session_id=sid, track=track)
        return run.execute()


def _take_over(old: Session, fresh: Session) -> Session:
    """A named session that never made a version (a dry run, a run stopped by a typo in a path) is the caller's to
    run again under the same name: upstream's notebook cell, fixed and re-run, was refused for good. One with a
    version is refused; what the old one spent stays counted."""
    if old.versions:
        raise SessionError(f"session {old.session_id} already exists with {len(old.versions)} version(s); "
                           "process_input(session_id=...) names a new session",
                           hint=f"continue it with optimize_with_feedback({old.session_id!r}), or pick another id")
    return fresh.model_copy(update={"spent": old.spent, "created_at": old.created_at})  # fmt: skip


def _refuse_spec_and_data(session_id: str, overrides: dict[str, Any]) -> None:
    """A refine reuses the session's task and rows: a kwarg that would define them is refused, never ignored."""
    given = [k for k in SPEC_AND_DATA if overrides.get(k) is not None]
    if given:
        raise ConfigurationError(
            f"optimize_with_feedback reuses session {session_id}'s task and data; {', '.join(given)} cannot change "
            "them", hint="start a new run with process_input(...) for another task or other data",
        )  # fmt: skip


def optimize_with_feedback(
    session_id: str,
    *,
    clients: dict[str, ModelClient] | None = None,
    progress: ProgressFn | None = None,
    sessions_dir: str | None = None,
    track: str | None = None,
    **overrides: Any,
) -> OptimizationResult:
    """Re-optimize a saved session from its latest version and open feedback (upstream name). `overrides` are run
    settings (models, keys, search, budget); the task and data are the session's (other ones are refused)."""
    from promptomatix.followup import refine

    with _python_errors():
        _refuse_spec_and_data(session_id, overrides)
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

    with _python_errors():
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

    with _python_errors():
        api_key = overrides.pop("model_api_key", None) or overrides.pop("api_key", None)
        api_base = overrides.pop("model_api_base", None) or overrides.pop("api_base", None)
        return _resume(
            session_id, store=SessionStore(sessions_dir), clients=clients, progress=progress, api_key=api_key,
            api_base=api_base, track=track, **overrides,
        )  # fmt: skip


def load_session(session_id: str, *, sessions_dir: str | None = None) -> Session:
    with _python_errors():
        return SessionStore(sessions_dir).load(session_id)


def list_sessions(*, sessions_dir: str | None = None) -> list[SessionListing]:
    """Summaries, newest first; each also reads like upstream's dict (`s["session_id"]`, `s["initial_input"]`,
    `s["latest_optimized_prompt"]`)."""
    with _python_errors():
        return [SessionListing.of_summary(s, session) for s, session in SessionStore(sessions_dir).listed()]


def save_feedback(
    text: str,
    start_offset: int,
    end_offset: int,
    feedback: str,
    prompt_id: str,
    *,
    sessions_dir: str | None = None,
) -> dict[str, Any]:
    """Upstream's `save_feedback`: a comment on a quoted span of a session's latest prompt (`prompt_id` = session
    id). The quote must occur in that prompt (offsets that do not match it are corrected from the quote)."""
    from promptomatix.sessions.feedback import save_feedback as _save

    with _python_errors():
        start, end = _index(start_offset), _index(end_offset)  # numpy/pandas integers are offsets too
        return _save(text, start, end, feedback, prompt_id, store=SessionStore(sessions_dir))


def _index(value: Any) -> Any:
    """An integer-like offset (np.int64 from a DataFrame) as an int; anything else as given, for the check to refuse."""
    import operator

    if isinstance(value, bool):
        return value
    try:
        return operator.index(value)
    except TypeError:
        return value
