"""Work on a saved session: refine it from human feedback, resume an interrupted run, generate feedback.

All three reuse the session's spec and data (nothing is re-generated) and its response cache (nothing already
paid for is paid again).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import SecretStr, ValidationError

from promptomatix.backends.base import ProgressFn
from promptomatix.backends.prompt import PromptCandidate, PromptProgram
from promptomatix.config import RunConfig
from promptomatix.data import DataSplits
from promptomatix.errors import ConfigurationError, SessionError
from promptomatix.lm.boundary import ModelClient
from promptomatix.result import OptimizationResult
from promptomatix.run import runner
from promptomatix.run.carried import carried_note, check_budget_left, remember_limits, with_run_limits
from promptomatix.run.checkpoint import RunProgress
from promptomatix.run.env import RunEnv
from promptomatix.run.recorder import SessionRecorder, fold_crashed, usage_of
from promptomatix.run.state import RunState
from promptomatix.run_guard import require_answers, run_lock
from promptomatix.sessions import SessionStore
from promptomatix.sessions.feedback import attach_feedback
from promptomatix.sessions.feedback_check import distinct_feedback, feedback_text, reads_as
from promptomatix.sessions.models import FeedbackItem, PromptVersion, Session
from promptomatix.sessions.store import corrupt_session
from promptomatix.task import TaskSpec

log = logging.getLogger(__name__)

_FEEDBACK_SCHEMA = {
    "type": "object",
    "properties": {
        "feedback": {
            "type": "array",
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {"quote": {"type": "string"}, "comment": {"type": "string", "minLength": 5}},
                "required": ["quote", "comment"],
            },
        }
    },
    "required": ["feedback"],
}


def _load(store: SessionStore, session_id: str) -> tuple[Session, TaskSpec, DataSplits]:
    session = store.load(session_id)
    if not session.task_spec or not session.data:
        raise SessionError(
            f"session {session_id} has no task spec or data yet",
            hint=f"run it first, or `promptomatix resume {session_id}`",
        )
    spec = _block(session, "task_spec", lambda: TaskSpec(**session.task_spec))
    return session, spec, _block(session, "data", lambda: DataSplits.from_dict(session.data))


T = TypeVar("T")


def _block(session: Session, name: str, read: Callable[[], T]) -> T:
    """A block of session.json the store keeps as plain JSON, read into its model; a hand-edited block that does
    not read is reported as the store reports a corrupt file (it was a pydantic dump or an AttributeError)."""
    try:
        return read()
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join([name, *(str(p) for p in err["loc"])])
        why = err["msg"]
    except (TypeError, ValueError, AttributeError, KeyError) as e:
        where, why = name, f"{type(e).__name__}: {e}"
    raise corrupt_session(f"session {session.session_id}'s session.json", session.session_id, where, why)


def _config(session: Session, overrides: dict[str, Any], api_key: str | None, api_base: str | None = None) -> RunConfig:
    """The session's settings with overrides (ours or upstream's names; a typo is a ConfigurationError).

    Keys are never stored, and URL credentials were stripped before saving: `api_key`/`api_base` supply them again
    (without them, the provider's env var, e.g. OPENAI_API_KEY, is read by the client as usual). A stripped api_base
    needs `api_base` again: a key does not replace the URL's own credential (userinfo, Azure's `?code=`), and the
    run would go to the stripped URL without it.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    teacher = bool(given.get("teacher_api_base") or given.get("config_model_api_base"))
    supplied = {"api_base": bool(api_base), "teacher_api_base": teacher}
    stripped = [f.split(".")[-1] for f in getattr(session, "stripped_credentials", lambda: [])()]
    missing = [f for f in stripped if not supplied.get(f, bool(api_key or api_base))]
    if missing:
        flags = " and ".join("--teacher-api-base" if f == "teacher_api_base" else "--api-base" for f in missing)
        raise ConfigurationError(
            f"the session's {', '.join(missing)} had credentials that were not saved",
            hint=f"pass {flags} with the full URL (and the key) again",
        )
    teacher_key = given.get("teacher_api_key") or given.get("config_model_api_key")
    if session.run_config.get("teacher_own_key") and not teacher_key:  # the task's key must not go to its server
        raise ConfigurationError(
            "the session's teacher had its own key, which was not saved",
            hint="pass --teacher-api-key again (or set PROMPTOMATIX_TEACHER_API_KEY)",
        )
    if api_base:
        given["api_base"] = api_base
    cfg = RunConfig.from_kwargs(**{**session.run_config, **given})
    if api_key:
        cfg.api_key = SecretStr(api_key)
    return cfg


def candidate_of(version: PromptVersion) -> PromptCandidate:
    return PromptCandidate(
        instructions=version.instructions or version.prompt,
        demos=list(version.demos),
        format_line=version.settings.get("format_line"),
        origin=f"version {version.version}",
    )


def _env(
    cfg: RunConfig,
    store: SessionStore,
    session_id: str,
    clients: dict[str, ModelClient] | None,
    progress: ProgressFn | None,
    track: str | None = None,
) -> RunEnv:
    return RunEnv(cfg, SessionRecorder(store, session_id), clients=clients, progress=progress, track=track)


def refine(
    session_id: str,
    *,
    store: SessionStore | None = None,
    clients: dict[str, ModelClient] | None = None,
    progress: ProgressFn | None = None,
    api_key: str | None = None,
    api_base: str | None = None,
    track: str | None = None,
    **overrides: Any,
) -> OptimizationResult:
    """Re-optimize from the latest version with the session's open feedback; mark that feedback applied.

    A refine that fails applies nothing and adds no version; one that ends with the prompt it started from adds no
    version either ("no change"); one the held-out test calls worse than the latest version is reported
    (`kept_version`) and the latest stays the latest.
    """
    store = store or SessionStore(overrides.pop("sessions_dir", None))
    with run_lock(store, session_id, "refine"):
        session, spec, splits = _load(store, session_id)
        latest = session.latest_version()
        if latest is None:
            raise SessionError(
                f"session {session_id} has no version to refine", hint=f"promptomatix resume {session_id}"
            )
        open_items = session.open_feedback()
        texts = [feedback_text(f, latest.prompt) for f in open_items]  # a quote the prompt lost says so
        env = _env(_config(session, overrides, api_key, api_base), store, session_id, clients, progress, track)
        state = RunState(
            spec=spec, splits=splits, data_report=session.data_report, initial=candidate_of(latest),
            human_feedback=texts, feedback_ids=[f.id for f in open_items],
            parent_version=latest.version, parent_prompt=latest.prompt,
        )  # fmt: skip
        return runner.run_search(env, state, "refine")


def resume(
    session_id: str,
    *,
    store: SessionStore | None = None,
    clients: dict[str, ModelClient] | None = None,
    progress: ProgressFn | None = None,
    api_key: str | None = None,
    api_base: str | None = None,
    track: str | None = None,
    **overrides: Any,
) -> OptimizationResult:
    """Continue an interrupted or failed run. Calls it already made replay from the session's cache for free."""
    store = store or SessionStore(overrides.pop("sessions_dir", None))
    with run_lock(store, session_id, "resume"):
        session = store.load(session_id)
        if session.status == "completed":
            raise SessionError(
                f"session {session_id} already completed",
                hint=f"use `promptomatix refine {session_id}` to go further",
            )
        fold_crashed(session)  # killed outright: its spending is counted (saved with the limits below)
        given = session.data.get("given_rows", {}) if not session.task_spec else {}
        run = _block(session, "progress", lambda: RunProgress.model_validate(session.progress or {}))
        cfg = _config(session, {**overrides, "dry_run": False, **given}, api_key, api_base)
        cfg, before = with_run_limits(cfg, run.limits, overrides), run.spent_before
        check_budget_left(cfg.budget(), before, session_id)
        store.update(session_id, lambda s: (fold_crashed(s), remember_limits(s, cfg)))
        env = _env(cfg, store, session_id, clients, progress, track)
        env.spent_before = before
        note = carried_note(cfg.budget(), before)
        if not session.task_spec or not session.data:  # stopped while building the spec or data: start over
            result = runner.run_new(env, RunState(spent_before=before, notes=[note] if note else []), command="resume")
            if not isinstance(result, OptimizationResult):  # pragma: no cover - dry_run is forced off above
                raise SessionError(f"session {session_id} did not run", hint=f"promptomatix resume {session_id}")
            return result
        state = resumed_state(session)
        state.notes += [note] if note else []
        return runner.run_search(env, state, "resume")


def resumed_state(session: Session) -> RunState:
    """Where an unfinished search started: its spec, data, initial prompt, feedback and parent version. Feedback
    dismissed (or applied elsewhere) since the run stopped is left out: the user's later word wins."""
    spec = _block(session, "task_spec", lambda: TaskSpec(**session.task_spec))
    splits = _block(session, "data", lambda: DataSplits.from_dict(session.data))
    progress = _block(session, "progress", lambda: RunProgress.model_validate(session.progress or {}))
    initial = _block(session, "progress.initial", lambda: PromptCandidate(**progress.initial) if progress.initial
                     else PromptCandidate(instructions=spec.initial_prompt))  # fmt: skip
    parent = progress.parent_version
    parent_prompt = next((v.prompt for v in session.versions if v.version == parent), None)
    texts, ids, notes = _still_open(session, progress.human_feedback, progress.feedback_ids)
    return RunState(
        spec=spec, splits=splits, data_report=session.data_report, initial=initial, human_feedback=texts,
        feedback_ids=ids, parent_version=parent, parent_prompt=parent_prompt, notes=notes,
        spent_before=progress.spent_before,
    )  # fmt: skip


def _still_open(session: Session, texts: list[str], ids: list[str]) -> tuple[list[str], list[str], list[str]]:
    """The checkpoint's feedback without the items that are no longer open, or no longer read as the text the run
    was given (edited since, or a deleted item's id given to a new one by an older version), and notes naming what
    was left out. Texts and ids pair up when ids were given."""
    items = {f.id: f for f in session.feedback}
    if len(texts) != len(ids):
        return texts, ids, []
    status = {i: items[i].status if i in items else "deleted" for i in ids}  # deleted (the UI can) failed the resume
    gone = [i for i in ids if status[i] != "open"]
    edited = [i for t, i in zip(texts, ids, strict=True) if status[i] == "open" and not reads_as(items[i], t)]
    kept = [(t, i) for t, i in zip(texts, ids, strict=True) if i not in gone and i not in edited]
    notes = [f"feedback {', '.join(gone)} left out: {'it is' if len(gone) == 1 else 'they are'} no longer open "
             f"({', '.join(sorted({status[i] for i in gone}))} since the run stopped)"] if gone else []  # fmt: skip
    if edited:
        notes.append(f"feedback {', '.join(edited)} left out: {'it reads' if len(edited) == 1 else 'they read'} "
                     "differently from when the run stopped; left open for the next refine")  # fmt: skip
    return [t for t, _ in kept], [i for _, i in kept], notes


#: upstream's generate_feedback was given the prompt and the rows; ours reads them from the session.
_UPSTREAM_CRITIQUE = ("optimized_prompt", "input_fields", "output_fields", "synthetic_data", "initial_prompt")


def _check_critique_args(overrides: dict[str, Any], max_examples: Any) -> None:
    """Upstream's `generate_feedback(optimized_prompt=…, input_fields=…, synthetic_data=…)`: refused naming what
    this one takes (the prompt, fields and rows were "unknown setting" or, for the fields, silently ignored)."""
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise ConfigurationError(  # 0 paid a critic call on no rows; -3 scored all rows but the last three
            f"max_examples must be a whole number of rows >= 1, got {max_examples!r}", hint="e.g. max_examples=8"
        )
    given = [k for k in _UPSTREAM_CRITIQUE if overrides.get(k) is not None]
    if given:
        raise ConfigurationError(
            f"generate_feedback takes a session, not {', '.join(given)}: it critiques the session's latest prompt "
            "on the session's own fields and rows",
            hint="pass only session_id=r.session_id (and budget settings such as max_calls)",
        )


def generate_feedback(
    session_id: str,
    *,
    store: SessionStore | None = None,
    clients: dict[str, ModelClient] | None = None,
    api_key: str | None = None,
    api_base: str | None = None,
    progress: ProgressFn | None = None,
    max_examples: int = 8,
    **overrides: Any,
) -> dict[str, Any]:
    """An LLM critic (the teacher) reads the latest prompt's failures and writes feedback items into the session.

    `overrides` are run settings such as the budget (max_calls, max_usd, max_minutes, ...).
    """
    _check_critique_args(overrides, max_examples)
    store = store or SessionStore(overrides.pop("sessions_dir", None))
    with run_lock(store, session_id, "feedback generate"):
        session, spec, splits = _load(store, session_id)
        latest = session.latest_version()
        if latest is None:
            raise SessionError(f"session {session_id} has no version yet", hint=f"promptomatix resume {session_id}")
        env = _env(_config(session, overrides, api_key, api_base), store, session_id, clients, progress)
        try:
            individual, rows, items = _critique(env, spec, splits, latest, max_examples)
        except BaseException:  # what the critic spent before it failed is still the session's cost
            _record_spent(store, session_id, env)
            raise
        added: list[FeedbackItem] = []

        def save(s: Session) -> None:
            _add_spent(s, env)
            for quote, comment in distinct_feedback(s, items):  # no duplicates of each other or of open items
                where = (latest.instructions or "") if quote and quote in (latest.instructions or "") else latest.prompt
                use_quote = quote if quote and quote in where and quote in latest.prompt else None
                added.append(
                    attach_feedback(s, comment=comment, text=use_quote, version=latest.version, source="generated")
                )

        store.update(session_id, save)
    usage = env.boundary().usage().total
    return {
        "session_id": session_id,
        # upstream returned this as a JSON string, and its callers json.loads it
        "comprehensive_feedback": json.dumps(
            {"primary_feedback": [f.comment for f in added], "secondary_feedback": []}
        ),
        "individual_feedbacks": individual,
        "feedback_items": [f.model_dump(mode="json") for f in added],
        "synthetic_data_used": len(rows),
        "metrics": {
            "time_taken": usage.seconds,
            "cost": usage.cost_usd,
            "samples_processed": len(rows),
            "calls": usage.calls,
        },
    }


def _add_spent(s: Session, env: RunEnv) -> None:
    built = env.boundary_if_built()
    if built is not None:
        s.add_spent(usage_of(built))


def _record_spent(store: SessionStore, session_id: str, env: RunEnv) -> None:
    try:
        store.update(session_id, lambda s: _add_spent(s, env))
    except Exception as e:  # never hide the critic's error behind a bookkeeping one
        log.warning("could not record what session %s spent: %s", session_id, e)


def _critique(
    env: RunEnv, spec: TaskSpec, splits: DataSplits, latest: PromptVersion, max_examples: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[tuple[str, str]]]:
    """Score the latest prompt on a few rows, then ask the teacher for feedback on the failures."""
    boundary = env.boundary()
    ctx = env.context(spec)
    rows = list(splits.valid or splits.train)[:max_examples]
    ctx.emit("feedback", f"scoring version {latest.version} on {len(rows)} rows")
    report = ctx.evaluate(PromptProgram(candidate_of(latest), spec, boundary.role("task")), rows)
    require_answers(report, boundary, f"scoring version {latest.version}")
    failures = [r for r in report.records if r.raw_score < 1.0]
    individual = [
        {
            "sample_index": r.index,
            "user_input": r.inputs,
            "expected_output": r.gold,
            "ai_output": r.output,
            "feedback": r.feedback or r.error or "",
        }
        for r in failures
    ]
    lines = "\n".join(
        f"- input: {str(f['user_input'])[:200]} | expected: {f['expected_output']} | got: {f['ai_output']} | {f['feedback']}"
        for f in individual[:5]
    )
    prompt = (
        f'You review a prompt for this task: {spec.description}\n\nPrompt:\n"""{latest.instructions or latest.prompt}"""\n\n'
        f"It got these examples wrong:\n{lines or '(none)'}\n\nWrite up to 3 short, specific feedback items. For each, "
        'quote the exact words of the prompt it is about (or "" for the prompt as a whole) and say what to change.\n'
        'Reply as JSON: {"feedback": [{"quote": "...", "comment": "..."}]}'
    )
    ctx.emit("feedback", f"{len(failures)} of {len(rows)} rows wrong; asking the teacher for feedback")
    answer = boundary.role("teacher").chat(
        [{"role": "user", "content": prompt}], json_schema=_FEEDBACK_SCHEMA, max_tokens=400
    )
    return individual, rows, _parse_items(answer)


def _parse_items(text: str) -> list[tuple[str, str]]:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return []
    out = []
    for item in data.get("feedback", []) if isinstance(data, dict) else []:
        if isinstance(item, dict) and isinstance(item.get("comment"), str) and len(item["comment"].split()) >= 2:
            out.append((str(item.get("quote") or "").strip(), item["comment"].strip()))
    return out[:3]
