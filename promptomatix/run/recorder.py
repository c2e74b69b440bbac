"""The one writer of session state during a run, and the one teller of run events.

Every stage hands what it produced to the `SessionRecorder`; nothing else in a run calls `store.update`. Each
status change it records (started, a candidate scored, finished, failed, interrupted) is also told to plugins as a
run event (`promptomatix.plugins.emit`), so subscribers see exactly what the session says.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

from promptomatix.errors import RunInterrupted, SessionError
from promptomatix.plugins import emit
from promptomatix.run.checkpoint import Checkpoint, RunProgress
from promptomatix.run_guard import run_lock, run_owner

if TYPE_CHECKING:
    from promptomatix.backends.base import CandidateRecord
    from promptomatix.config import RunConfig
    from promptomatix.data import DataSplits
    from promptomatix.lm.boundary import LMBoundary
    from promptomatix.sessions import SessionStore
    from promptomatix.sessions.models import Usage
    from promptomatix.task import TaskSpec

log = logging.getLogger(__name__)


class SessionRecorder:
    """Writes one run's session. `hold`: where the run lock of a session this run creates is kept."""

    def __init__(self, store: SessionStore, session_id: str | None = None, hold: ExitStack | None = None) -> None:
        self.store = store
        self.session_id = session_id
        self.hold = hold
        self._reported: set[int] = set()
        self._ended = False  # completed or kept recorded (with the run's spending): a later error changes neither
        self._behind: _Write | None = None  # a write still being made while the run goes on
        self._order = threading.Lock()
        self._was: tuple[str, dict[str, Any]] | None = None  # status and progress before a refine/resume's search

    def _update(self, fn: Any, *, strict: bool = True) -> None:
        """Write now, after the write behind (if any), so the session's writes land in the order they were made.
        A failed write behind is raised first; `strict=False` (recording a failure) logs it and writes anyway."""
        with self._order:
            try:
                self._drain()
            except Exception as e:
                if strict:
                    raise
                log.warning("an earlier write to session %s failed: %s", self.session_id, e)
            self.store.update(self.sid, fn)

    def _update_behind(self, fn: Any) -> None:
        """Write in a thread of its own while the run goes on (a session write is CPU the model's calls could
        overlap); the next write of either kind waits for it, and a failure is raised there."""
        with self._order:
            self._drain()
            self._behind = _Write(self.store, self.sid, fn)

    def _drain(self) -> None:
        if self._behind is not None:
            write, self._behind = self._behind, None
            write.wait()

    @property
    def sid(self) -> str:
        if self.session_id is None:
            raise SessionError("the run has no session yet")  # never reached: stages open the session first
        return self.session_id

    # -- the session ----------------------------------------------------------------------------------------------
    def open(self, cfg: RunConfig) -> str:
        """The run's session, created (status running, locked for the whole run) when there is none yet."""
        if self.session_id is not None:
            return self.session_id
        # Rows passed in memory are not part of run_config; keep them so `resume` after a Ctrl-C during spec/data
        # building uses them instead of silently generating synthetic data.
        given = {k: v for k, v in (("train_data", cfg.train_data), ("valid_data", cfg.valid_data),
                                   ("test_data", cfg.test_data)) if v is not None}  # fmt: skip
        session = self.store.new_session(
            description=(cfg.task_description or cfg.raw_input)[:200],
            raw_input=cfg.raw_input,
            run_config=cfg.persistable(),
            status="running",
            data={"given_rows": given} if given else {},
            progress={"owner": run_owner()},
        )
        self.session_id = session.session_id
        if self.hold is not None:  # a new session is ours for the whole run: `delete`/`resume` refuse
            self.hold.enter_context(run_lock(self.store, self.session_id, "optimize"))
        return self.session_id

    def started(self, cfg: RunConfig, command: str) -> None:
        """Tell subscribers a run began (its config as persisted: no keys, no in-memory rows)."""
        emit("run_started", self.session_id, command=command, backend=cfg.backend, config=cfg.persistable())

    def spec_and_data(self, spec: TaskSpec, splits: DataSplits, data_report: dict[str, Any]) -> None:
        def save(s: Any) -> None:
            s.task_spec = spec.model_dump(mode="json")
            s.data = splits.to_dict()
            s.data_report = data_report

        self._update(save)

    def spec_only(self, spec: TaskSpec) -> None:
        """The spec without data (a dry run that planned the data): `resume` then builds the data."""
        self._update(lambda s: setattr(s, "task_spec", spec.model_dump(mode="json")))

    def dry_run_done(self, usage: Usage | None = None) -> None:
        def save(s: Any) -> None:
            s.status = "created"
            if usage is not None:
                s.add_spent(usage)

        self._update(save)

    def search_started(self, progress: RunProgress) -> None:
        """Status running, with what the search starts from (so `resume` continues the same run)."""

        def start(s: Any) -> None:
            if s.status in ("completed", "interrupted", "failed"):
                self._was = (s.status, dict(s.progress or {}))
            s.status = "running"
            s.progress = progress.dump()
            s.add_event("run", backend=progress.backend)

        self._update_behind(start)

    def checkpoint(self, cp: Checkpoint, usage: Usage | None = None) -> None:
        """A backend's best-so-far: what Ctrl-C or a crash keeps (written behind: the next write waits for it), with
        what the run has spent so far: a run killed outright (SIGKILL, out of memory) records nothing else, and its
        resume counts this (`fold_crashed`)."""
        update = {"checkpoint": cp.model_dump(mode="json")}
        if usage is not None:
            update["spent_live"] = usage.model_dump(mode="json")
        self._update_behind(lambda s: s.progress.update(update))

    def candidates(self, records: list[CandidateRecord]) -> None:
        """Tell subscribers of each candidate once (a backend may report some live, the rest come with its result)."""
        for rec in records:
            if rec.id in self._reported:
                continue
            self._reported.add(rec.id)
            emit("candidate_scored", self.session_id, **rec.model_dump(mode="json"))

    # -- endings --------------------------------------------------------------------------------------------------
    def completed(self, version_kwargs: dict[str, Any], finished: dict[str, Any]) -> int:
        """The result becomes the next version; the session is completed."""
        holder: dict[str, int] = {}

        def save(s: Any) -> None:
            s.status = "completed"
            s.progress = {}
            if "usage" in version_kwargs:  # before the version: an older session's total sums its versions
                s.add_spent(version_kwargs["usage"])
            v = s.add_version(**version_kwargs)
            s.add_event("completed", version=v.version)
            holder["v"] = v.version

        self._update(save)
        self._ended = True
        emit("run_finished", self.session_id, version=holder["v"], **finished)
        return holder["v"]

    def kept(
        self, kind: str, version: int, finished: dict[str, Any], usage: Usage, scored: dict[str, Any] | None = None,
        **event: Any,
    ) -> None:
        """Completed without a new version (`kept_previous`: scored lower; `no_change`: the same prompt). `scored`:
        fields set on the kept version (a resume scored its saved best-so-far on the held-out rows)."""

        def save(s: Any) -> None:
            s.status = "completed"
            s.progress = {}
            s.add_spent(usage)
            kept_version = s.get_version(version)
            for name, value in (scored or {}).items():
                setattr(kept_version, name, value)
            s.add_event(kind, version=version, **event)

        self._update(save)
        self._ended = True
        emit("run_finished", self.session_id, version=None, kept_version=version, outcome=kind, **finished)

    def failed(self, reason: str, usage: Usage | None = None) -> None:
        """Status `failed` with the reason and what the run spent; never hides the original error behind a
        bookkeeping one."""
        if self.session_id is None:
            return

        def save(s: Any) -> None:
            if self._ended:  # after the result was saved (a progress callback raised): the session stays completed
                s.add_event("failed_after_saving", reason=reason)
                return
            if self._was is not None and (usage is None or usage.calls == 0):
                # refused before it spent anything (no search fits the budget): the session stays as it was, and
                # a completed one is not turned into a failed run that `resume` would take up without the limit
                s.status, s.progress = self._was
                s.add_event("refused", reason=reason)
                return
            s.status = "failed"
            s.add_event("failed", reason=reason)
            if usage is not None:
                s.add_spent(usage)
                _carry(s, usage)

        try:
            self._update(save, strict=False)
        except Exception as e:
            log.warning("could not mark session %s failed: %s", self.session_id, e)
        emit("run_failed", self.session_id, cause=reason)

    def interrupted(self, spec: TaskSpec | None, backend: str, usage: Usage | None = None) -> RunInterrupted:
        """On Ctrl-C: status interrupted, the best so far kept as a version (with what the run spent), and how to
        resume."""
        sid = self.sid
        try:
            with _no_second_interrupt():
                version = self._save_interrupted(spec, backend, usage)
        except Exception as e:  # a second error must not turn an interrupt into a traceback
            log.warning("could not save the best-so-far of %s: %s", sid, e)
            version = None
        emit("run_interrupted", sid, version=version)
        return RunInterrupted(
            "interrupted" + (f"; best so far saved as version {version}" if version else ""),
            session_id=sid,
            hint=f"resume with `promptomatix resume {sid}`",
        )

    def _save_interrupted(self, spec: TaskSpec | None, backend: str, usage: Usage | None) -> int | None:
        """Status `interrupted`; the checkpoint becomes a version flagged interrupted (once per interruption)."""
        holder: dict[str, int | None] = {"v": None}

        def save(s: Any) -> None:
            if self._ended:  # Ctrl-C after the result was saved: it stays completed, its spending counted once
                s.add_event("interrupted_after_saving")
                return
            s.status = "interrupted"
            s.add_event("interrupted")
            if usage is not None:
                s.add_spent(usage)
                _carry(s, usage)
            progress = RunProgress.model_validate(s.progress or {})
            cp = progress.checkpoint  # round 0: the initial prompt with its baseline valid score
            if cp is None or spec is None or progress.saved_version:
                return
            kept = interrupted_version(cp, spec, progress.backend or backend)
            if usage is not None:
                kept["usage"], kept["duration_s"] = usage, usage.seconds  # `sessions show` read "0s"
            if not _beats_the_latest(s, kept):  # a stopped resume/refine must not bury a better version
                s.add_event("interrupted_not_saved", why="its best so far does not beat the latest version")
                return
            v = s.add_version(**kept)
            s.progress["saved_version"] = v.version
            holder["v"] = v.version

        self._update(save, strict=False)
        return holder["v"]


def _carry(s: Any, usage: Usage) -> None:
    """Add what this attempt spent to what the run spent before: `resume` counts the sum against its limits."""
    from promptomatix.sessions.models import Usage

    progress = {k: v for k, v in (s.progress or {}).items() if k != "spent_live"}  # superseded by `usage`
    try:
        before = Usage.model_validate(progress["spent_before"]) if progress.get("spent_before") else None
    except ValueError:  # a hand-edited record: count this attempt only
        before = None
    total = usage if before is None else before + usage
    s.progress = {**progress, "spent_before": total.model_dump(mode="json")}


def fold_crashed(s: Any) -> bool:
    """A run killed outright left its spending at its last checkpoint only: count it as the session's and as the
    run's earlier spending (as Ctrl-C would have), once. True when there was such a record."""
    from promptomatix.sessions.models import Usage

    live = (s.progress or {}).get("spent_live") if s.status == "running" else None
    if not live:
        return False
    try:
        usage = Usage.model_validate(live)
    except ValueError:
        return False
    s.add_spent(usage)
    _carry(s, usage)
    s.add_event("crashed", spent_calls=usage.calls)
    return True


def usage_of(boundary: LMBoundary, seconds: float | None = None) -> Usage:
    """The boundary's count of a run's calls as a session records it (`seconds`: the run's wall time)."""
    from promptomatix.sessions.models import Usage

    t = boundary.usage().total
    return Usage(calls=t.calls, cached_calls=t.cached_calls, failed_calls=t.failed_calls,
                 estimated_calls=t.estimated_calls, prompt_tokens=t.prompt_tokens,
                 completion_tokens=t.completion_tokens, cost_usd=t.cost_usd,
                 seconds=boundary.elapsed if seconds is None else seconds)  # fmt: skip


class _Write:
    """One session update made by a thread of its own; `wait` joins it and raises what it raised."""

    def __init__(self, store: SessionStore, sid: str, fn: Any) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(store, sid, fn), name="promptomatix-session-write")
        self.thread.start()

    def _run(self, store: SessionStore, sid: str, fn: Any) -> None:
        try:
            store.update(sid, fn)
        except BaseException as e:  # re-raised in the thread that waits for this write
            self.error = e

    def wait(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


def interrupted_version(cp: Checkpoint, spec: TaskSpec, backend: str) -> dict[str, Any]:
    """A checkpoint as `add_version` arguments: the backend's own rendering and program, flagged interrupted."""
    from promptomatix.backends.prompt import PromptCandidate
    from promptomatix.sessions.models import Score

    best = cp.best
    cand = PromptCandidate(instructions=best.instructions, demos=best.demos, format_line=best.format_line,
                           origin=best.origin)  # fmt: skip
    return {
        "prompt": best.prompt or cand.render(spec),
        "backend": backend,
        "instructions": best.instructions,
        "demos": best.demos,
        "settings": {"format_line": best.format_line, "interrupted": True, "origin": best.origin,
                     "rounds_completed": cp.round},
        "valid": Score(raw=best.valid_raw, penalized=best.valid_penalized),
        "initial_valid": Score(raw=cp.initial_valid_raw, penalized=cp.initial_valid_penalized),
        "program_json": best.program_json,
    }


def _beats_the_latest(session: Any, kept: dict[str, Any]) -> bool:
    """A resumed or refined run stopped early: its best so far becomes the latest version (the one `export` and
    `refine` use) only when it is a different prompt that scores higher on the same valid rows."""
    latest = session.latest_version() if session.versions else None
    if latest is None:
        return True
    if latest.prompt == kept["prompt"]:
        return False
    mine, theirs = kept["valid"].penalized, latest.valid.penalized if latest.valid else None
    return mine is not None and (theirs is None or mine > theirs + 1e-9)


@contextmanager
def _no_second_interrupt() -> Iterator[None]:
    """A second Ctrl-C while the best-so-far is being written must not leave the session half-saved (`running`).

    Nor a SIGTERM or SIGHUP that the process turns into an interrupt (the CLI does: `timeout`, `docker stop` or a
    closed terminal after a Ctrl-C): every stop signal with a Python handler is ignored for the save. One whose
    handler is the default (a library caller's SIGTERM) is left alone: it still ends the process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    try:
        for stop in _stop_signals():
            previous[stop] = signal.signal(stop, signal.SIG_IGN)
        yield
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)


def _stop_signals() -> list[int]:
    """SIGINT, and SIGTERM/SIGHUP when a Python handler (one that may raise into the save) is set for them."""
    others = (getattr(signal, name, None) for name in ("SIGTERM", "SIGHUP"))
    return [signal.SIGINT, *(s for s in others if s is not None and callable(signal.getsignal(s)))]
