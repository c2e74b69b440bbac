"""Failure is failure: a run whose task model could not answer ends `failed` with one line naming the cause and
the fix; a failing metric is a MetricError naming it; partial held-out errors are shown and never called an
improvement; a refine that fails or scores lower does not replace the latest version."""

from __future__ import annotations

import json
import re

import pytest

from promptomatix import process_input
from promptomatix.api import load_session
from promptomatix.errors import LMCallError, MetricError, ModelUnavailableError, OptimizerError
from promptomatix.followup import refine
from promptomatix.lm.fake import FakeLM
from promptomatix.sessions import SessionStore

TASK = "Classify the sentiment of a movie review as positive or negative"
GOOD_PROMPT = "Say negative if the review complains or criticizes, otherwise say positive."
MARKER = "ZEBRAQUOKKA"  # only held-out test rows contain it
REFUSED = "connection refused at http://127.0.0.1:9/v1 — is the server running?"


def rows(n: int, offset: int = 0, marker: str = "") -> list[dict[str, str]]:
    out = []
    for i in range(offset, offset + n):
        words = "great wonderful" if i % 2 == 0 else "awful boring"
        review = f"{words} film {marker} number {i}".replace("  ", " ")
        out.append({"review": review, "label": "positive" if i % 2 == 0 else "negative"})
    return out


GIVEN = {"train_data": rows(8), "valid_data": rows(6, 100), "test_data": rows(6, 200, MARKER)}


def truth(user: str) -> str:
    return "negative" if "awful" in user else "positive"


def task_answer(messages: list[dict[str, str]]) -> str:
    system, user = messages[0]["content"], messages[-1]["content"]
    label = truth(user) if "complains" in system else "positive"
    return json.dumps({"label": label})


def teacher_answer(messages: list[dict[str, str]]) -> str:
    text = "\n".join(m["content"] for m in messages)
    return json.dumps({"prompt": GOOD_PROMPT}) if '{"prompt"' in text else "{}"


def refused(messages: list[dict[str, str]]) -> str:
    raise LMCallError(REFUSED)


def clients(task=task_answer, teacher=teacher_answer) -> dict[str, FakeLM]:
    return {"task": FakeLM(default=task, model="fake/task"), "teacher": FakeLM(default=teacher, model="fake/teacher")}


def run(tmp_path, task=task_answer, **kw):
    args = {"human_input": TASK, "sessions_dir": str(tmp_path / "s"), **GIVEN, **kw}
    return process_input(clients=clients(task), **args)


def only_session(tmp_path):
    (summary,) = SessionStore(tmp_path / "s").list()
    return SessionStore(tmp_path / "s").load(summary.session_id)


# -- the optimizer gives up ----------------------------------------------------------------------------------


def test_a_dspy_optimizer_that_raises_is_a_failed_run_not_the_initial_prompt_as_a_result(tmp_path, capsys):
    """The teacher answers DSPy's instruction proposer with no proposed_instruction: MIPROv2 raises. That run
    ended `completed` (exit 0), handing out the initial program as the 'optimized' one, with a traceback on the
    terminal; it fails in one line that names the optimizer, its error and how to go on."""
    with pytest.raises(OptimizerError) as e:
        run(tmp_path, backend="dspy")
    msg, s = str(e.value), only_session(tmp_path)
    assert msg.startswith("DSPy miprov2 failed: AdapterParseError") and "proposed_instruction" in msg
    assert "\n" not in msg and f"promptomatix.resume({s.session_id!r})" in msg and "backend='simple_meta_prompt'" in msg
    assert s.status == "failed" and not s.versions and s.events[-1]["kind"] == "failed"
    assert "Traceback" not in capsys.readouterr().err


# -- the task model cannot answer -----------------------------------------------------------------------------


def test_every_baseline_call_failing_is_a_failed_run_naming_the_provider_error(tmp_path):
    with pytest.raises(ModelUnavailableError) as e:
        run(tmp_path, task=refused)
    msg = str(e.value)
    assert "could not answer" in msg and "scoring the initial prompt" in msg and REFUSED in msg
    assert "\n" not in msg
    s = only_session(tmp_path)
    assert s.status == "failed" and not s.versions
    assert s.total_spent().calls >= 6  # the failed attempts are the session's cost too (lost before)
    assert s.events[-1]["kind"] == "failed" and REFUSED in s.events[-1]["reason"]


def test_more_than_half_of_the_held_out_rows_erroring_fails_the_run(tmp_path):
    def no_test_rows(messages):
        if MARKER in messages[-1]["content"]:
            raise LMCallError("HTTP 500 from the provider")
        return task_answer(messages)

    with pytest.raises(ModelUnavailableError, match=r"6 of 6 held-out test rows errored.*HTTP 500"):
        run(tmp_path, task=no_test_rows)
    s = only_session(tmp_path)
    assert s.status == "failed" and not s.versions


def test_a_few_held_out_errors_are_shown_and_never_an_improvement(tmp_path):
    def one_test_row_fails(messages):
        if f"{MARKER} number 201" in messages[-1]["content"]:
            raise LMCallError("HTTP 429 rate limited")
        return task_answer(messages)

    r = run(tmp_path, task=one_test_row_fails)
    assert r.test_score > r.initial_test_score  # higher on paper...
    assert not r.improved  # ...but a row errored, so it is not called an improvement
    assert "1 of 6 held-out test rows errored scoring the initial prompt" in r.notes
    assert any("unreliable" in n for n in r.notes)
    assert load_session(r.session_id, sessions_dir=str(tmp_path / "s")).status == "completed"
    from promptomatix.cli.report import verdict_line

    assert "unreliable" in verdict_line(r) and "improvement" in verdict_line(r)


def test_a_clean_gain_on_enough_test_rows_is_an_improvement_and_is_stored(tmp_path):
    r = run(tmp_path, test_data=rows(20, 200, MARKER))
    assert r.improved and not r.notes
    assert r.verdict.outcome == "improved" and (r.verdict.wins, r.verdict.losses) == (10, 0)
    assert r.verdict.test == "exact McNemar" and r.verdict.p_value < 0.01
    version = load_session(r.session_id, sessions_dir=str(tmp_path / "s")).latest_version()
    assert version.verdict["outcome"] == "improved"
    assert len(version.test_examples) == 20 and {"expected", "got", "initial_got"} <= set(version.test_examples[0])
    assert version.pareto and r.pareto == version.pareto
    assert r.to_json_dict()["verdict"]["outcome"] == "improved"


def test_the_same_gain_on_six_test_rows_is_no_detectable_difference(tmp_path):
    r = run(tmp_path)
    assert r.test_score > r.initial_test_score  # higher on paper...
    assert not r.improved and r.verdict.outcome == "no_detectable_difference"  # ...but 3 wins of 6 rows is noise
    from promptomatix.cli.report import verdict_line

    line = verdict_line(r)
    assert "no detectable difference" in line and "rows would detect" in line


# -- metrics --------------------------------------------------------------------------------------------------


def test_a_metric_that_raises_is_a_metric_error_naming_it(tmp_path):
    path = tmp_path / "mymetric.py"
    path.write_text("def score(example, pred):\n    raise ValueError('boom in metric')\n")
    task = FakeLM(default=task_answer, model="fake/task")
    with pytest.raises(MetricError) as e:
        process_input(
            clients={"task": task, "teacher": FakeLM(default=teacher_answer)},
            human_input=TASK, sessions_dir=str(tmp_path / "s"), metric=f"{path}:score", **GIVEN,
        )  # fmt: skip
    msg = str(e.value)
    assert "mymetric:score" in msg and "ValueError" in msg and "boom in metric" in msg
    assert len(task.calls) <= 6  # stopped within the first scoring, not after a run of 0.000 scores
    assert only_session(tmp_path).status == "failed"


def test_a_metric_with_the_wrong_signature_fails_before_any_task_call(tmp_path):
    path = tmp_path / "onearg.py"
    path.write_text("def score(example):\n    return 1.0\n")
    task = FakeLM(default=task_answer, model="fake/task")
    with pytest.raises(MetricError, match=r"onearg:score cannot be called as fn\(example, prediction\)"):
        process_input(
            clients={"task": task, "teacher": FakeLM(default=teacher_answer)},
            human_input=TASK, sessions_dir=str(tmp_path / "s"), metric=f"{path}:score", **GIVEN,
        )  # fmt: skip
    assert task.calls == []


# -- refine ---------------------------------------------------------------------------------------------------


def test_a_refine_that_fails_applies_no_feedback_and_adds_no_version(tmp_path):
    from promptomatix.sessions.feedback import attach_feedback

    r = run(tmp_path)
    store = SessionStore(tmp_path / "s")
    store.update(r.session_id, lambda s: attach_feedback(s, comment="Mention sarcasm please."))
    with pytest.raises(ModelUnavailableError, match="could not answer"):
        refine(r.session_id, store=store, clients=clients(refused))
    s = store.load(r.session_id)
    assert [v.version for v in s.versions] == [1]
    assert [(f.status, f.applied_in) for f in s.feedback] == [("open", None)]
    assert s.status == "failed"


def _number(user: str) -> int:
    return int(re.search(r"number (\d+)", user).group(1))


def test_a_refine_that_scores_lower_on_the_held_out_test_keeps_the_previous_version(tmp_path):
    """The refined prompt wins on valid and train but loses every held-out row: it must not become latest."""
    from promptomatix.sessions.feedback import attach_feedback

    r = run(tmp_path)
    store = SessionStore(tmp_path / "s")
    store.update(r.session_id, lambda s: attach_feedback(s, comment="Be more decisive please."))

    def task(messages):
        system, user = messages[0]["content"], messages[-1]["content"]
        right, wrong = truth(user), "positive" if truth(user) == "negative" else "negative"
        if "DECISIVE" in system:
            return json.dumps({"label": wrong if MARKER in user else right})
        return json.dumps({"label": wrong if _number(user) in (1, 3, 100, 101) else right})

    def teacher(messages):
        text = "\n".join(m["content"] for m in messages)
        return json.dumps({"prompt": "DECISIVE. " + GOOD_PROMPT}) if '{"prompt"' in text else "{}"

    fresh = {"task": FakeLM(default=task, model="fake/task-2"), "teacher": FakeLM(default=teacher, model="fake/t-2")}
    out = refine(r.session_id, store=store, clients=fresh)  # new model names: nothing replays from the cache
    # the result hands out version 1, with its scores; the rejected candidate is candidate_prompt
    assert "DECISIVE" in out.candidate_prompt and "DECISIVE" not in out.best_prompt
    assert out.test_score == out.initial_test_score and not out.improved
    assert out.kept_version == 1 and out.version is None and out.feedback_applied == []
    assert any("scored lower on the held-out test" in n and "kept version 1 as latest" in n for n in out.notes)
    s = store.load(r.session_id)
    assert [v.version for v in s.versions] == [1] and s.status == "completed"
    assert [f.status for f in s.feedback] == ["open"]
    assert s.events[-1]["kind"] == "kept_previous" and "DECISIVE" in s.events[-1]["rejected_prompt"]


def test_no_data_because_the_teacher_failed_blames_the_teacher_not_the_data(tmp_path):
    def unauthorized(messages):
        raise LMCallError("HTTP 401 from openai", hint="check OPENAI_API_KEY")

    with pytest.raises(ModelUnavailableError) as e:
        process_input(
            raw_input=TASK, clients=clients(teacher=unauthorized), sessions_dir=str(tmp_path / "s"),
            synthetic_data_size=10,
        )  # fmt: skip
    assert str(e.value) == "the teacher model could not answer: HTTP 401 from openai (check OPENAI_API_KEY)"
    assert only_session(tmp_path).status == "failed"


def test_a_model_that_never_answers_with_a_label_is_a_failed_run(tmp_path):
    with pytest.raises(ModelUnavailableError, match=r"never gave a readable answer.*lorem"):
        run(tmp_path, task=lambda messages: json.dumps({"label": "#$%^ lorem ipsum"}))
    assert only_session(tmp_path).status == "failed"


def test_a_weak_model_that_is_sometimes_readable_is_a_result(tmp_path):
    def sometimes(messages):
        return json.dumps({"label": "positive" if "1" in messages[-1]["content"] else "no idea"})

    r = run(tmp_path, task=sometimes)
    assert r.verdict is not None and only_session(tmp_path).status == "completed"


@pytest.mark.parametrize("limit", [{"max_total_tokens": 1600}, {"max_usd": 0.05}])
def test_a_token_or_dollar_limit_leaves_enough_to_test_the_verdict(tmp_path, limit):
    """Both limits used to let the search spend everything: the held-out scoring then ran out and the verdict was
    `no_test`. The search now stops with the final scoring's share held back (at the task calls' mean size)."""
    task = FakeLM(default=task_answer, model="fake/task", cost_per_call=0.001)
    teacher = FakeLM(default=teacher_answer, model="fake/teacher", cost_per_call=0.001)
    args = {"human_input": TASK, "sessions_dir": str(tmp_path / "s"), "rounds": 3, **GIVEN, **limit}
    result = process_input(clients={"task": task, "teacher": teacher}, **args)
    assert result.stop_reason.startswith("budget:") and "held back for the final scoring" in result.stop_reason
    assert result.verdict.outcome != "no_test" and result.verdict.n == len(GIVEN["test_data"])
    assert only_session(tmp_path).status == "completed"


def test_a_metric_that_does_not_import_fails_before_any_model_call(tmp_path):
    """It was found when the first row was scored, after the spec (and any synthetic data) had been paid for."""
    task = FakeLM(default=task_answer, model="fake/task")
    teacher = FakeLM(default=teacher_answer, model="fake/teacher")
    args = {"human_input": TASK, "sessions_dir": str(tmp_path / "s"), **GIVEN, "metric": "zz_no_such_metrics:score"}
    with pytest.raises(MetricError, match="cannot import metric module 'zz_no_such_metrics'"):
        process_input(clients={"task": task, "teacher": teacher}, **args)
    assert task.calls == [] and teacher.calls == []


def test_an_error_after_the_result_is_saved_neither_recounts_nor_unsaves_it(tmp_path):
    """A progress callback that raised at the last event made the session `failed` after its version was saved,
    and counted the run's calls twice (412 for 206)."""

    def progress(event):
        if event.stage == "done":
            raise RuntimeError("the caller's display broke")

    with pytest.raises(RuntimeError, match="display broke"):
        run(tmp_path, progress=progress)
    s = only_session(tmp_path)
    assert s.status == "completed" and len(s.versions) == 1
    assert s.total_spent().calls == s.versions[0].usage.calls > 0
    assert s.events[-1]["kind"] == "failed_after_saving"


def test_a_blank_task_description_is_a_usage_error_before_any_session(tmp_path):
    """`optimize "   "` exited 1 and left a `failed` session with an empty description, one per try."""
    from promptomatix.errors import UsageError

    task = FakeLM(default=task_answer, model="fake/task")
    teacher = FakeLM(default=teacher_answer, model="fake/teacher")
    for blank in ("   ", "\n\t"):
        with pytest.raises(UsageError, match="no task description") as e:
            process_input(raw_input=blank, clients={"task": task, "teacher": teacher},
                          sessions_dir=str(tmp_path / "s"), **GIVEN)  # fmt: skip
        assert e.value.exit_code == 2
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())
    assert task.calls == [] and teacher.calls == []
