"""process_input end to end with fake models: upstream's keys and kwargs, typed results and errors, no secret on
disk, a held-out test split the optimizer never sees, dry runs, session versions, the overall call budget, and
Ctrl-C → resume without paying any LM call twice."""

from __future__ import annotations

import csv
import json
import re
import threading
from pathlib import Path

import pytest

from promptomatix import process_input, resume
from promptomatix.api import load_session
from promptomatix.errors import ConfigurationError, PromptomatixError, RunInterrupted, SessionError
from promptomatix.lm.fake import FakeLM
from promptomatix.result import DryRunReport, OptimizationResult

TASK = "Classify the sentiment of a movie review as positive or negative"
GOOD_PROMPT = "Say negative if the review complains or criticizes, otherwise say positive."
SECRET = "sk-test-DO-NOT-STORE-4f9a8b7c6d5e"
MARKER = "ZEBRAQUOKKA"  # only held-out test rows contain it


def rows(n: int, offset: int = 0, marker: str = "") -> list[dict[str, str]]:
    out = []
    for i in range(offset, offset + n):
        good = i % 2 == 0
        words = "great wonderful" if good else "awful boring"
        out.append(
            {
                "review": f"{words} film {marker} number {i}".replace("  ", " "),
                "label": "positive" if good else "negative",
            }
        )
    return out


def task_answer(messages: list[dict[str, str]]) -> str:
    """Right only when the system prompt mentions 'complains'; otherwise always 'positive'."""
    system, user = messages[0]["content"], messages[-1]["content"]
    if "complains" in system:
        return json.dumps({"label": "negative" if "awful" in user else "positive"})
    return json.dumps({"label": "positive"})


def teacher_answer(messages: list[dict[str, str]]) -> str:
    text = "\n".join(m["content"] for m in messages)
    if '{"prompt"' in text:
        return json.dumps({"prompt": GOOD_PROMPT})
    return "{}"  # spec questions: fall back to what the data and the description say


class Counter:
    """A thread-safe call counter that can raise KeyboardInterrupt on its n-th call (a simulated Ctrl-C)."""

    def __init__(self, answer, interrupt_at: int | None = None) -> None:
        self.answer, self.interrupt_at, self.n = answer, interrupt_at, 0
        self.lock = threading.Lock()

    def __call__(self, messages):
        with self.lock:
            self.n += 1
            k = self.n
        if k == self.interrupt_at:
            raise KeyboardInterrupt
        return self.answer(messages)


def fakes(task_interrupt: int | None = None, teacher_interrupt: int | None = None):
    task, teacher = Counter(task_answer, task_interrupt), Counter(teacher_answer, teacher_interrupt)
    clients = {
        "task": FakeLM(default=task, model="fake/task"),
        "teacher": FakeLM(default=teacher, model="fake/teacher"),
    }
    return clients, task, teacher


GIVEN = {"train_data": rows(8), "valid_data": rows(6, 100), "test_data": rows(6, 200, MARKER)}


def run(tmp_path: Path, clients=None, **kw) -> OptimizationResult:
    args = {"human_input": TASK, "sessions_dir": str(tmp_path / "s"), **GIVEN, **kw}
    return process_input(clients=clients or fakes()[0], **args)


UPSTREAM_KEYS = {
    "result", "initial_prompt", "session_id", "backend", "metrics", "synthetic_data", "llm_cost",
    "input_fields", "output_fields", "task_type",
}  # fmt: skip


def test_process_input_returns_upstream_keys_and_typed_attributes(tmp_path):
    r = run(tmp_path, model_name="gpt-4o-mini", search_type="quick_search")
    assert isinstance(r, OptimizationResult)
    assert set(r.keys()) == UPSTREAM_KEYS and set(dict(r)) == UPSTREAM_KEYS
    m = r["metrics"]
    for key in ("initial_prompt_score", "optimized_prompt_score", "cost", "time_taken"):
        assert key in m
    assert r["result"] == r.prompt_text and GOOD_PROMPT in r["result"] and "[user]" not in r["result"]
    assert r["initial_prompt"] == r.initial_prompt and r["session_id"] == r.session_id
    assert (r["backend"], r["task_type"]) == ("simple_meta_prompt", "classification")
    assert (r["input_fields"], r["output_fields"]) == (["review"], ["label"])
    assert m["optimized_prompt_score"] > m["initial_prompt_score"]  # raw valid scores, as upstream's were
    assert m["optimized_prompt_score_penalized"] < m["optimized_prompt_score"]
    assert r["llm_cost"] == m["cost"] == 0.0
    assert isinstance(r["synthetic_data"], list) and len(r["synthetic_data"]) == 8 + len(r.data_splits["valid"])
    # typed view of the same object
    assert r.test_score == pytest.approx(1.0) and r.initial_test_score == pytest.approx(0.5)
    assert r.metrics.optimized_test_score.n == 6 and r.metrics.test_split == "test"
    assert r.valid_score == m["optimized_prompt_score"]


def test_result_is_saved_as_version_1_with_scores_and_usage(tmp_path):
    r = run(tmp_path)
    s = load_session(r.session_id, sessions_dir=str(tmp_path / "s"))
    assert s.status == "completed" and [v.version for v in s.versions] == [1] and r.version == 1
    v = s.versions[0]
    assert v.prompt == r.best_prompt and v.parent is None
    assert v.valid.penalized == pytest.approx(r.metrics.optimized_prompt_score_penalized)
    assert v.valid.raw == pytest.approx(r.metrics.optimized_prompt_score)
    assert v.test.mean == pytest.approx(1.0) and v.initial_test.mean == pytest.approx(0.5)
    assert v.usage.calls == r.metrics.calls > 0
    assert s.task_spec["task_type"] == "classification" and len(s.data["test"]) == 6
    assert s.run_config["model"] == "local/smollm2-135m"


def test_upstream_kwargs_with_local_csv_files(tmp_path):
    def write(path, data):
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["review", "label"])
            w.writeheader()
            w.writerows(data)

    write(tmp_path / "train.csv", rows(12))
    write(tmp_path / "test.csv", rows(6, 300, MARKER))
    clients, task, _ = fakes()
    r = process_input(
        clients=clients,
        human_input=TASK,
        model_name="gpt-4o-mini",
        model_api_key=SECRET,
        search_type="quick_search",
        load_data_local=True,
        local_train_data_path=str(tmp_path / "train.csv"),
        local_test_data_path=str(tmp_path / "test.csv"),
        synthetic_data_size=10,
        train_ratio=0.5,
        sessions_dir=str(tmp_path / "s"),
    )
    assert r.metrics.optimized_test_score.n == 6  # the test CSV is the held-out split
    assert r.task_type == "classification" and r["output_fields"] == ["label"]
    assert task.n > 0


def test_unknown_kwarg_is_a_configuration_error_naming_the_near_miss(tmp_path):
    with pytest.raises(ConfigurationError) as e:
        run(tmp_path, synthetic_data_sise=10)
    assert "synthetic_data_sise" in str(e.value) and "synthetic_data_size" in str(e.value)


def test_errors_are_raised_typed_never_returned_as_dicts(tmp_path):
    with pytest.raises(ConfigurationError):
        run(tmp_path, backend="nosuch")
    with pytest.raises(ConfigurationError):
        run(tmp_path, train_ratio=2.0)
    with pytest.raises(PromptomatixError):
        process_input(clients=fakes()[0], human_input="", sessions_dir=str(tmp_path / "s"))
    with pytest.raises(SessionError):
        resume("../x", sessions_dir=str(tmp_path / "s"))


def test_api_key_never_reaches_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTOMATIX_API_KEY", SECRET)
    r = run(tmp_path, model_api_key=SECRET)
    files = [p for p in (tmp_path / "s").rglob("*") if p.is_file()]
    assert any(p.name == "cache.sqlite" for p in files) and any(p.name == "session.json" for p in files)
    for p in files:
        assert SECRET.encode() not in p.read_bytes(), p
    assert SECRET not in json.dumps(r.to_json_dict()) and SECRET not in repr(r)


def test_held_out_test_rows_are_only_sent_in_the_final_report(tmp_path):
    stage = {"final": False}
    early: list[str] = []

    def watch(messages):
        text = "\n".join(m["content"] for m in messages)
        if MARKER in text and not stage["final"]:
            early.append(text)
        return task_answer(messages)

    def progress(event):
        if event.stage == "final":
            stage["final"] = True

    teacher_seen: list[str] = []
    clients = {
        "task": FakeLM(default=watch),
        "teacher": FakeLM(default=lambda m: teacher_seen.append(m[-1]["content"]) or teacher_answer(m)),
    }
    r = process_input(clients=clients, progress=progress, human_input=TASK, sessions_dir=str(tmp_path / "s"), **GIVEN)
    assert stage["final"] and not early
    assert not any(MARKER in t for t in teacher_seen)
    marked = [c for c in clients["task"].calls if MARKER in c["messages"][-1]["content"]]
    assert len(marked) == 2 * 6  # initial and optimized prompt, each on every test row
    assert r.metrics.optimized_test_score.n == 6


def test_dry_run_estimates_calls_and_makes_no_optimization_calls(tmp_path):
    clients, task, teacher = fakes()
    d = run(tmp_path, clients=clients, dry_run=True)
    assert isinstance(d, DryRunReport)
    assert task.n == 0 and teacher.n <= 1  # at most the spec question; no scoring, no proposals
    assert d.estimated_calls["optimize"] > 0 and d.estimated_calls["final_test"] == 12
    assert d.estimated_calls["data"] == 0 and d.estimated_calls["spec"] <= 1  # all rows given: nothing to write
    assert d.estimated_calls["total"] == sum(v for k, v in d.estimated_calls.items() if k != "total")
    assert {k: len(v) for k, v in d.rows.items()} == {"train": 8, "valid": 6, "test": 6}
    assert (d.task_type, d.input_fields, d.output_fields) == ("classification", ["review"], ["label"])
    assert set(d.labels) == {"positive", "negative"}
    s = load_session(d.session_id, sessions_dir=str(tmp_path / "s"))
    assert s.status == "created" and not s.versions and s.task_spec


def test_a_synthetic_dry_run_plans_the_data_without_generating_it(tmp_path):
    clients, task, teacher = fakes()
    d = process_input(clients=clients, human_input=TASK, synthetic_data_size=30,
                      sessions_dir=str(tmp_path / "s"), dry_run=True, task_type="classification",
                      input_fields=["review"], output_fields=["label"], labels=["positive", "negative"])  # fmt: skip
    # the spec questions only; not one synthetic row written: the dry run costs seconds, not minutes
    assert task.n == 0 and teacher.n == d.estimated_calls["spec"] <= 2
    assert d.estimated_calls["data"] > 0 and d.estimated_calls["optimize"] > 0
    assert d.estimated_calls["final_test"] > 0  # sized from the planned splits
    assert "would write 30 synthetic rows" in d.data_report["notes"][0]
    s = load_session(d.session_id, sessions_dir=str(tmp_path / "s"))
    assert s.status == "created" and s.task_spec and not s.data.get("train")  # `resume` builds the data for real


@pytest.mark.parametrize("max_calls", [60, 80, 120])
def test_max_calls_is_respected_overall(tmp_path, max_calls):
    clients, task, teacher = fakes()
    r = run(tmp_path, clients=clients, max_calls=max_calls)
    assert task.n + teacher.n <= max_calls
    assert r.metrics.calls == task.n + teacher.n
    assert r.metrics.optimized_test_score is not None  # calls were kept for the final report


@pytest.mark.parametrize("max_calls", [3, 20, 30])  # 40 now pays for one candidate judged on valid
def test_a_budget_that_cannot_pay_for_one_candidate_is_refused_before_the_search(tmp_path, max_calls):
    clients, task, _ = fakes()
    with pytest.raises(ConfigurationError, match=r"no search fits the budget") as e:
        run(tmp_path, clients=clients, max_calls=max_calls)
    assert task.n == 0  # the task model was never called: nothing spent on a search that could not finish
    advised = int(re.search(r"use max_calls=(\d+)", e.value.hint).group(1))  # Python advice from the Python API
    r = run(tmp_path, clients=fakes()[0], max_calls=advised)  # the advice is enough (it once fell short of it)
    rounds = [c.get("round") or 0 for c in load_session(r.session_id, sessions_dir=str(tmp_path / "s")).latest_version().candidates]
    assert r.metrics.calls <= advised and max(rounds) >= 1


def test_time_budget_stops_the_search_but_the_held_out_report_still_runs(tmp_path):
    slow = {
        "task": FakeLM(default=task_answer, model="fake/task", latency=0.1),
        "teacher": FakeLM(default=teacher_answer, model="fake/teacher", latency=0.1),
    }  # the spec and baseline take ~1 s of the 3 (0.3 s of 0.3 failed under load); heavy's search takes far more
    r = run(tmp_path, clients=slow, max_minutes=3 / 60, search_type="heavy")
    assert r.stop_reason.startswith("budget") and "time budget" in r.stop_reason
    assert r.metrics.initial_test_score is not None and r.metrics.optimized_test_score is not None


def test_a_heavy_preset_is_fitted_to_the_budget_and_says_how(tmp_path):
    clients, task, teacher = fakes()
    r = run(tmp_path, clients=clients, max_calls=60, search_type="heavy")
    assert task.n + teacher.n <= 60 and r.rounds_completed >= 1
    version = load_session(r.session_id, sessions_dir=str(tmp_path / "s")).latest_version()
    plan = " ".join(version.settings["search_plan"])
    assert "fitted to the budget" in plan and "rounds" in plan


# -- Ctrl-C and resume -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    clients, task, teacher = fakes()
    r = run(tmp_path_factory.mktemp("full"), clients=clients)
    return {"calls": task.n + teacher.n, "result": r}


def _settle(*counters, quiet_s: float = 0.2, limit_s: float = 5.0) -> None:
    """Wait until no counter moved for `quiet_s` (bounded by `limit_s`)."""
    import time

    deadline, last, since = time.monotonic() + limit_s, None, time.monotonic()
    while time.monotonic() < deadline:
        now = tuple(c.n for c in counters)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("interrupt_at", "saved"),
    # task calls: baseline, round 1, round 2, the confirmation of finalists, the final report
    # from 30 on the baseline is measured: an interrupt before round 1 ends keeps the initial prompt as version 1
    [(3, False), (30, True), (65, True), (84, True), (90, True)],
)
def test_ctrl_c_then_resume_pays_no_call_twice(tmp_path, uninterrupted, interrupt_at, saved):
    clients, task, teacher = fakes(task_interrupt=interrupt_at)
    with pytest.raises(RunInterrupted) as e:
        run(tmp_path, clients=clients)
    assert e.value.exit_code == 130 and e.value.session_id
    sid = e.value.session_id
    assert f"promptomatix.resume({sid!r})" in str(e.value) and isinstance(e.value, KeyboardInterrupt)
    _settle(task, teacher)  # calls already in flight on other threads finish (and are cached) after the Ctrl-C
    made = (task.n - 1) + teacher.n  # the interrupted call never completed
    s = load_session(sid, sessions_dir=str(tmp_path / "s"))
    assert s.status == "interrupted"
    if saved:  # the best so far (at least the measured initial prompt) is kept as a version
        assert "saved as version 1" in str(e.value) and s.versions[0].valid.penalized is not None
        assert [v.version for v in s.versions] == [1] and s.versions[0].settings["interrupted"]
    else:
        assert not s.versions and not s.progress.get("best")
    # what the run spent is the session's, interrupted or not (it read 0 calls before): at the Ctrl-C at most the
    # calls made, and all but the ones in flight then
    at_interrupt = s.total_spent().calls
    assert made - 4 <= at_interrupt <= made + 1 and s.total_spent().prompt_tokens > 0
    if saved:
        assert s.versions[0].usage.calls == at_interrupt

    fresh, task2, teacher2 = fakes()
    r = resume(sid, clients=fresh, sessions_dir=str(tmp_path / "s"))
    paid = task2.n + teacher2.n
    assert paid == uninterrupted["calls"] - made  # every earlier call replayed from cache.sqlite
    assert r.metrics.calls == paid
    # replays: every call made before the Ctrl-C except the spec question (the saved spec is reused, not re-asked)
    assert r.metrics.cached_calls == uninterrupted["result"].metrics.cached_calls + made - 1
    assert r.best_prompt == uninterrupted["result"].best_prompt
    assert r.test_score == uninterrupted["result"].test_score
    done = load_session(sid, sessions_dir=str(tmp_path / "s"))
    assert done.status == "completed" and done.versions[-1].prompt == r.best_prompt
    assert [v.version for v in done.versions] == ([1, 2] if saved else [1]) and r.version == done.versions[-1].version
    assert done.total_spent().calls == at_interrupt + paid


def test_ctrl_c_during_the_spec_keeps_the_given_rows_for_resume(tmp_path, uninterrupted):
    clients, task, _teacher = fakes(teacher_interrupt=1)
    with pytest.raises(RunInterrupted) as e:
        run(tmp_path, clients=clients)
    assert task.n == 0
    sid = e.value.session_id
    assert load_session(sid, sessions_dir=str(tmp_path / "s")).status == "interrupted"
    fresh, task2, teacher2 = fakes()
    r = resume(sid, clients=fresh, sessions_dir=str(tmp_path / "s"))
    assert task2.n + teacher2.n == uninterrupted["calls"]
    assert r.data_splits["train"] == GIVEN["train_data"] and r.metrics.optimized_test_score.n == 6


def test_resume_of_a_completed_session_is_a_clean_error(tmp_path):
    r = run(tmp_path)
    with pytest.raises(SessionError, match="already completed"):
        resume(r.session_id, clients=fakes()[0], sessions_dir=str(tmp_path / "s"))


def test_a_run_that_raises_is_marked_failed_and_can_be_resumed(tmp_path):
    def broken(messages):
        raise RuntimeError("teacher exploded")

    with pytest.raises(RuntimeError):
        run(tmp_path, clients={"task": FakeLM(default=task_answer), "teacher": FakeLM(default=broken)})
    (summary,) = promptomatix_list(tmp_path)
    assert summary.status == "failed"
    r = resume(summary.session_id, clients=fakes()[0], sessions_dir=str(tmp_path / "s"))
    assert r.version == 1 and r.data_splits["train"] == GIVEN["train_data"]


def promptomatix_list(tmp_path):
    from promptomatix.api import list_sessions

    return list_sessions(sessions_dir=str(tmp_path / "s"))


def test_resume_refuses_a_session_that_another_process_is_running(tmp_path):
    import subprocess
    import sys

    dry = run(tmp_path, dry_run=True)
    holder = (
        "import sys, time; from promptomatix.sessions import SessionStore\n"
        "with SessionStore(sys.argv[1]).run_lock(sys.argv[2], command='resume'):\n"
        "    print('held', flush=True); time.sleep(60)\n"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", holder, str(tmp_path / "s"), dry.session_id], stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout.readline().strip() == "held"
        with pytest.raises(SessionError, match=f"process {other.pid}"):
            resume(dry.session_id, clients=fakes()[0], sessions_dir=str(tmp_path / "s"))
    finally:
        other.kill()
        other.wait(timeout=10)
    # Once that process is gone (a crash, a kill -9), the same session resumes.
    result = resume(dry.session_id, clients=fakes()[0], sessions_dir=str(tmp_path / "s"))
    assert result.version == 1


def test_a_budget_out_before_the_baseline_names_the_limit_that_ran_out(tmp_path):
    with pytest.raises(PromptomatixError, match="before the initial prompt was scored") as e:
        run(tmp_path, max_total_tokens=1000, max_tokens=8, config_max_tokens=60)  # the spec fits, the baseline not
    assert e.value.hint.startswith("raise max_total_tokens")  # not "max_calls/max_usd/max_minutes"
    assert "synthetic" not in e.value.hint  # the rows were given: fewer synthetic rows would save nothing
    with pytest.raises(PromptomatixError, match="budget of 150 tokens is too small for one call") as e:
        run(tmp_path, max_total_tokens=150)  # the first call's max_tokens alone is more: nothing was sent
    assert e.value.hint.startswith("raise the limit (max_total_tokens)")


def test_a_run_says_how_many_calls_had_estimated_usage(tmp_path):
    """Calls answered without token counts were counted by the boundary, but the result and session dropped it."""
    import dataclasses

    class NoCounts(FakeLM):
        def complete(self, messages, **kw):
            return dataclasses.replace(super().complete(messages, **kw), estimated=True)

    clients, _, teacher = fakes()
    clients["teacher"] = NoCounts(default=teacher, model="fake/teacher")
    r = run(tmp_path, clients=clients)
    assert r.metrics.estimated_calls == teacher.n > 0
    session = load_session(r.session_id, sessions_dir=str(tmp_path / "s"))
    assert session.total_spent().estimated_calls == teacher.n


def test_a_dry_run_whose_model_failed_every_call_is_not_a_success(tmp_path):
    """Every spec question met an unreadable answer; the dry run guessed the spec, printed a plan and exited 0."""
    from promptomatix.errors import LMCallError
    from promptomatix.testing.fault_server import FaultServer

    failed = r"dry run: every teacher call failed \(2 of 2 requests\)"
    with FaultServer("malformed") as s, pytest.raises(LMCallError, match=failed) as e:
        process_input(human_input=TASK, model="openai/x", api_base=s.base_url, api_key="sk-test-key-1234",
                      synthetic_data_size=30, dry_run=True, sessions_dir=str(tmp_path / "s"))  # fmt: skip
    assert "OpenAI-compatible" in (e.value.hint or "")
    sid = next((tmp_path / "s").iterdir()).name
    assert load_session(sid, sessions_dir=str(tmp_path / "s")).status == "failed"
