"""Run events reach a plugin registered on the plugin manager: run_started (the persisted config, no key),
candidate_scored once per candidate with its scores (both backends), run_finished (verdict, scores, version),
run_failed (the one-line cause) and run_interrupted (the best-so-far version). A failing subscriber never stops
a run."""

from __future__ import annotations

import pytest

from promptomatix.errors import LMCallError, ModelUnavailableError, RunInterrupted
from promptomatix.lm.fake import FakeLM
from promptomatix.plugins import hookimpl, plugin_manager
from tests.test_pipeline import SECRET, fakes, run, task_answer, teacher_answer
from tests.test_run_stages import DSPY, dspy_fakes


class Recorder:
    def __init__(self) -> None:
        self.events = []

    @hookimpl
    def on_run_event(self, event):
        self.events.append(event)

    def named(self, name):
        return [e for e in self.events if e.name == name]


@pytest.fixture
def events():
    rec = Recorder()
    pm = plugin_manager()
    pm.register(rec)
    yield rec
    pm.unregister(rec)


def test_a_run_tells_started_each_candidate_and_finished(tmp_path, events):
    r = run(tmp_path, api_key=SECRET)
    names = [e.name for e in events.events]
    assert names[0] == "run_started" and names[-1] == "run_finished" and set(names[1:-1]) == {"candidate_scored"}
    assert all(e.session_id == r.session_id for e in events.events)
    (started,) = events.named("run_started")
    config = started.payload["config"]
    assert config["backend"] == "simple_meta_prompt" and "api_key" not in config and SECRET not in str(started)
    scored = events.named("candidate_scored")
    assert sorted(e.payload["id"] for e in scored) == list(range(r.n_candidates))  # each once
    first = scored[0].payload
    assert first["origin"] == "initial" and first["valid_penalized"] == r.metrics.initial_prompt_score_penalized
    (finished,) = events.named("run_finished")
    p = finished.payload
    assert p["version"] == r.version == 1 and p["verdict"]["outcome"] == r.verdict.outcome
    assert p["scores"]["optimized_test"] == r.test_score and p["scores"]["initial_test"] == r.initial_test_score
    assert p["calls"] == r.metrics.calls


def test_the_dspy_backend_reports_candidates_as_it_scores_them(tmp_path, events):
    r = run(tmp_path, clients=dspy_fakes()[0], **DSPY)
    scored = events.named("candidate_scored")
    assert sorted(e.payload["id"] for e in scored) == list(range(r.n_candidates))
    assert scored[0].payload["origin"] == "initial" and scored[0].payload["valid_raw"] is not None
    names = [e.name for e in events.events]
    # the initial program is told as soon as it is scored: before the search ends, not with the result
    assert names.index("candidate_scored") == 1 and names[-1] == "run_finished"


def test_a_failed_run_tells_its_one_line_cause(tmp_path, events):
    def refused(messages):
        raise LMCallError("connection refused at http://127.0.0.1:9/v1")

    with pytest.raises(ModelUnavailableError) as e:
        run(tmp_path, clients={"task": FakeLM(default=refused), "teacher": FakeLM(default=teacher_answer)})
    (failed,) = events.named("run_failed")
    assert failed.payload["cause"] == str(e.value) and "connection refused" in failed.payload["cause"]
    assert not events.named("run_finished")


def test_an_interrupted_run_tells_the_best_so_far_version(tmp_path, events):
    clients, _, _ = fakes(task_interrupt=30)  # after the baseline: the initial prompt is kept as version 1
    with pytest.raises(RunInterrupted) as e:
        run(tmp_path, clients=clients)
    (stopped,) = events.named("run_interrupted")
    assert stopped.session_id == e.value.session_id and stopped.payload["version"] == 1
    assert not events.named("run_finished") and not events.named("run_failed")


def test_a_refine_with_no_change_finishes_without_a_version(tmp_path, events):
    from promptomatix.followup import refine
    from promptomatix.sessions import SessionStore

    r = run(tmp_path)
    events.events.clear()
    refine(r.session_id, store=SessionStore(tmp_path / "s"), clients=fakes()[0])
    (started,) = events.named("run_started")
    (finished,) = events.named("run_finished")
    assert started.payload["command"] == "refine"
    assert finished.payload["version"] is None and finished.payload["kept_version"] == 1
    assert finished.payload["outcome"] == "no_change"


def test_a_failing_subscriber_never_stops_the_run(tmp_path, events):
    class Broken:
        @hookimpl
        def on_run_event(self, event):
            raise RuntimeError("subscriber bug")

    broken = Broken()
    plugin_manager().register(broken)
    try:
        r = run(tmp_path, clients={"task": FakeLM(default=task_answer), "teacher": FakeLM(default=teacher_answer)})
    finally:
        plugin_manager().unregister(broken)
    assert r.version == 1 and events.named("run_finished")


def test_the_live_counter_never_goes_back_when_parallel_snapshots_arrive_out_of_order(monkeypatch):
    # Two threads' usage snapshots (11 calls, then 10) reached the display in the wrong order: "calls 11" then
    # "calls 10" on the live line (and a flaky CLI test under load).
    from types import SimpleNamespace

    import promptomatix.run.progress as live_progress
    from promptomatix.backends.base import ProgressEvent

    monkeypatch.setattr(live_progress, "TICK_S", 0.0)
    shown: list[int | None] = []
    live = live_progress.LiveProgress(lambda e: shown.append(e.calls))
    live.step(ProgressEvent(stage="round", message="round 1/3", calls=9))
    for n in (11, 10, 12):
        live.on_call(SimpleNamespace(total=SimpleNamespace(calls=n, cost_usd=0.0)))
    assert shown == [9, 11, 12]
