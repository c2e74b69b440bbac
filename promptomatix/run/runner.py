"""Strings the stages together under the one handler of bad endings, and logs the session to a tracker at the end.

`run_new`: spec → data → (dry run | search → held-out → result). `run_search`: search → held-out → result on a state
whose spec, data and starting prompt came from a saved session (refine, resume).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from promptomatix.backends.prompt import PromptCandidate
from promptomatix.result import DryRunReport, OptimizationResult
from promptomatix.run import stages
from promptomatix.run.ending import ending
from promptomatix.run.inputs import check_inputs
from promptomatix.run_guard import one_line
from promptomatix.run_report import finish

if TYPE_CHECKING:
    from promptomatix.run.env import RunEnv
    from promptomatix.run.state import RunState

log = logging.getLogger(__name__)


def run_new(
    env: RunEnv, st: RunState, prepare: Callable[[], object] | None = None, command: str = "optimize"
) -> OptimizationResult | DryRunReport:
    """A run from the task description; `prepare` replaces the spec and data stages (Run.prepare)."""
    dry = env.config.dry_run
    if not (env.config.task_description or env.config.raw_input or "").strip():
        from promptomatix.errors import UsageError  # before a session exists (each blank run left a failed one)

        raise UsageError("no task description", hint='pass one, e.g. promptomatix optimize "Classify ..."')
    check_track(env.track)
    check_plugins(env)
    check_metric(env.config.metric)
    made = env.recorder.session_id is not None  # a session made beforehand (a batch job): marked failed as before
    if not made:
        check_inputs(env, st)  # the flags and the rows: a wrong one is exit 2, before a session exists
    with _tracked(env, dry) as out, _ending(env, st):
        if made:
            check_inputs(env, st)
        env.recorder.open(env.config)
        if not dry:
            env.recorder.started(env.config, command)
        if prepare is not None:
            prepare()
        else:
            stages.spec_stage(env, st)
            stages.data_stage(env, st)
        if dry:
            from promptomatix.run.dry_run import dry_run

            return dry_run(env, st)
        st.initial = st.initial or PromptCandidate(instructions=st.need("spec").initial_prompt)
        out.result = _search_to_result(env, st)
        return out.result


def run_search(env: RunEnv, st: RunState, command: str) -> OptimizationResult:
    """Search, held-out scoring and result on a saved session's spec and data (refine, resume)."""
    check_track(env.track)
    check_plugins(env)
    check_metric(env.config.metric)
    with _tracked(env, False) as out, _ending(env, st):
        env.recorder.started(env.config, command)
        out.result = _search_to_result(env, st)
        return out.result


def _search_to_result(env: RunEnv, st: RunState) -> OptimizationResult:
    stages.search_stage(env, st)
    stages.held_out_stage(env, st)
    return finish(env, st)


def _ending(env: RunEnv, st: RunState) -> AbstractContextManager[None]:
    return ending(env.recorder, env.boundary_if_built, lambda: st.spec, env.config.backend)


@dataclass
class _Outcome:
    result: OptimizationResult | None = None


@contextmanager
def _tracked(env: RunEnv, dry: bool) -> Iterator[_Outcome]:
    """With `env.track`: log the session when the run ends, however it ends. A tracking failure is a note on the
    result (and a warning), never a failed run."""
    out = _Outcome()
    try:
        yield out
    finally:
        sid = env.recorder.session_id
        if env.track and not dry and sid is not None:
            note = track_run(env.track, env, sid)
            if note and out.result is not None:
                out.result.notes.append(note)


def check_plugins(env: RunEnv) -> None:
    """Build every registry the plugins add to, before the first call: a plugin that registers something invalid
    (a metric that is not callable) fails the run before it spends anything, not when the first row is scored.
    Then the run's backend (its `--backend-option`s, and a plugin's build) and the provider of each model string:
    a bad option, a backend that cannot be built or a provider's matcher that raises was found after the spec and
    the synthetic data were paid for, or left a failed session. Cheap: none of it imports DSPy or litellm."""
    from promptomatix.backends.registry import check_backend
    from promptomatix.lm.factory import check_models
    from promptomatix.plugins.report import build_registries

    build_registries()
    check_backend(env.config)
    check_models(env.config.model_settings(), env.clients)


def check_metric(spec: str | None) -> None:
    """A `--metric` that does not import or has the wrong signature fails before the spec and the synthetic data
    are paid for (it was found when the first row was scored)."""
    if not spec:
        return
    from promptomatix.metrics import load_metric_spec
    from promptomatix.metrics.custom import check_metric_signature

    check_metric_signature(load_metric_spec(spec))


def check_track(value: str | None) -> None:
    """A tracker named wrongly, not installed, or whose store does not answer is a ConfigurationError before the
    run, not a note after it."""
    if not value:
        return
    from promptomatix.tracking import check_tracking

    check_tracking(value)


def track_run(value: str, env: RunEnv, sid: str) -> str | None:
    """Log the session to the tracker; on failure return the note to show (the run's outcome stands). Ctrl-C while
    it logs stops the logging only: the run is saved, and its result is still shown."""
    from promptomatix.tracking import redact_track, track_session

    try:
        track_session(value, env.store, sid)
    except KeyboardInterrupt:
        note = f"tracking in {value.split(':', 1)[0]} interrupted (Ctrl-C); session {sid} is saved as it ended"
        log.warning("%s", note)
        return note
    except Exception as e:
        cause = one_line(redact_track(f"{type(e).__name__}: {e}", value))
        note = f"tracking in {value.split(':', 1)[0]} failed: {cause}"
        log.warning("%s", note)
        return note
    return None
