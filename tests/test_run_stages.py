"""The run in stages: an interrupted DSPy run is saved as DSPy made it (its rendering and program JSON), exports
as a DSPy program, and resumes without paying any call twice; sessions saved with the old progress layout still
resume; a refine that returns its starting prompt makes no version; a budget spent on a failing provider names the
provider's error; and the stages stay small (no function over 60 lines, no class over 250)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from promptomatix import process_input, resume
from promptomatix.api import load_session
from promptomatix.errors import BudgetExceeded, LMCallError, RunInterrupted
from promptomatix.followup import refine
from promptomatix.lm.fake import FakeLM
from promptomatix.sessions import SessionStore
from promptomatix.sessions.feedback import attach_feedback
from tests.test_dspy_backend import right_with_instruction_or_demos, task_model
from tests.test_pipeline import GIVEN, TASK, Counter, fakes, run, teacher_answer

ROOT = Path(__file__).resolve().parent.parent
DSPY = {"backend": "dspy", "dspy_optimizer": "bootstrap"}


def dspy_teacher(messages):
    """Spec questions as in test_pipeline; DSPy's JSONAdapter prompts get every requested field filled."""
    m = re.search(r"Respond with a JSON object in the following order of fields: (.+)", messages[-1]["content"], re.S)
    if m:
        return json.dumps({name: "Say negative if the review complains." for name in re.findall(r"`([^`]+)`", m[1])})
    return teacher_answer(messages)


def dspy_fakes(interrupt_at=None):
    task = Counter(task_model(right_with_instruction_or_demos), interrupt_at)
    teacher = Counter(dspy_teacher)
    clients = {"task": FakeLM(default=task, model="fake/task"), "teacher": FakeLM(default=teacher, model="fake/teacher")}
    return clients, task, teacher


@pytest.fixture(scope="module")
def dspy_uninterrupted(tmp_path_factory):
    clients, task, teacher = dspy_fakes()
    r = run(tmp_path_factory.mktemp("full"), clients=clients, **DSPY)
    assert r.backend == "dspy" and task.n > 20  # baseline 6 + bootstrap + compiled 6 + held-out 2 x 6
    return {"calls": task.n + teacher.n, "result": r}


# task calls: 6 baseline valid rows, then bootstrapping and the compiled program's valid score, then held-out test
@pytest.mark.parametrize("interrupt_at", [10, 25])
def test_interrupted_dspy_run_is_saved_as_dspy_made_it_exports_and_resumes(tmp_path, dspy_uninterrupted, interrupt_at):
    full = dspy_uninterrupted["result"]
    clients, task, teacher = dspy_fakes(interrupt_at)
    with pytest.raises(RunInterrupted) as e:
        run(tmp_path, clients=clients, **DSPY)
    sid, made = e.value.session_id, (task.n - 1) + teacher.n
    assert e.value.exit_code == 130 and "best so far saved as version 1" in str(e.value)
    store = SessionStore(tmp_path / "s")
    s = store.load(sid)
    (v,) = s.versions
    assert s.status == "interrupted" and v.settings["interrupted"] and v.backend == "dspy"
    # DSPy's own rendering (its field headers), not the meta backend's, and the program it would run
    assert v.prompt.startswith("[system]\nYour input fields are:") and v.program_json is not None
    if interrupt_at == 10:  # during the search: the measured initial program
        assert v.prompt == full.initial_prompt and v.valid.penalized == full.metrics.initial_prompt_score_penalized
    else:  # during the held-out scoring: the chosen program, demos included
        assert v.prompt == full.best_prompt and v.demos == full.demos
    exported = json.loads(store.export(sid, "dspy"))
    assert exported["signature"]["instructions"] == v.instructions and len(exported["demos"]) == len(v.demos)

    fresh, task2, teacher2 = dspy_fakes()
    r = resume(sid, clients=fresh, sessions_dir=str(tmp_path / "s"))
    assert task2.n + teacher2.n == dspy_uninterrupted["calls"] - made  # every earlier call replayed
    assert r.best_prompt == full.best_prompt and r.test_score == full.test_score and r.version == 2
    done = store.load(sid)
    assert done.status == "completed" and done.versions[-1].program_json is not None
    assert json.loads(store.export(sid, "dspy"))["demos"] == json.loads(json.dumps(done.versions[-1].program_json))[
        "demos"
    ]


def test_a_session_saved_with_the_old_progress_layout_resumes_from_its_checkpoint(tmp_path):
    clients, _task, _teacher = fakes(task_interrupt=30)  # after the baseline: version 1 is the initial prompt
    with pytest.raises(RunInterrupted) as e:
        run(tmp_path, clients=clients)
    store = SessionStore(tmp_path / "s")
    sid = e.value.session_id

    def old_layout(s):  # what sessions written before the typed checkpoint hold: its keys at the top level
        cp = s.progress.pop("checkpoint")
        s.progress.update(round=cp["round"], best=cp["best"], initial_valid_raw=cp["initial_valid_raw"])
        s.progress.pop("saved_version")
        s.versions.clear()

    store.update(sid, old_layout)
    from promptomatix.run.checkpoint import RunProgress

    progress = RunProgress.model_validate(store.load(sid).progress)
    assert progress.checkpoint is not None and progress.checkpoint.round == 0 and progress.initial
    r = resume(sid, clients=fakes()[0], sessions_dir=str(tmp_path / "s"))
    assert r.version == 1 and r.metrics.optimized_test_score is not None


def test_a_refine_that_returns_its_starting_prompt_makes_no_version_and_applies_nothing(tmp_path):
    r = run(tmp_path)
    store = SessionStore(tmp_path / "s")
    store.update(r.session_id, lambda s: attach_feedback(s, comment="Mention sarcasm.", version=1))
    # the same teacher proposes the same prompt again: nothing beats version 1, so the result is version 1's prompt
    again = refine(r.session_id, store=store, clients=fakes()[0])
    s = store.load(r.session_id)
    assert again.best_prompt == s.versions[0].prompt
    assert again.no_change and again.version is None and again.kept_version == 1 and not again.feedback_applied
    assert [v.version for v in s.versions] == [1] and s.status == "completed"
    assert [f.status for f in s.feedback] == ["open"] and s.events[-1]["kind"] == "no_change"
    assert any(n.startswith("no change") for n in again.notes) and not again.improved
    assert again.metrics.calls > 0 and s.total_spent().calls == r.metrics.calls + again.metrics.calls  # not lost


def test_the_budget_running_out_on_a_failing_provider_names_its_error(tmp_path):
    failing = "HTTP 503 from the provider: upstream overloaded"
    # 36 calls: 12 held back for the held-out scoring, 1 spec question; the 6 baseline rows x 4 attempts need 24

    def overloaded(messages):
        e = LMCallError(failing, retryable=True)
        e.retry_after = 0.0  # retried at once: 4 attempts per row
        raise e

    with pytest.raises(BudgetExceeded) as e:
        process_input(
            human_input=TASK, sessions_dir=str(tmp_path / "s"), **GIVEN, max_calls=36, rounds=0,  # baseline only
            clients={"task": FakeLM(default=overloaded), "teacher": FakeLM(default=teacher_answer)},
        )  # fmt: skip
    msg = str(e.value)
    assert "budget" in msg and failing in msg and "\n" not in msg
    (summary,) = SessionStore(tmp_path / "s").list()
    s = load_session(summary.session_id, sessions_dir=str(tmp_path / "s"))
    assert s.status == "failed" and failing in s.events[-1]["reason"]


STAGE_FILES = ["promptomatix/pipeline.py", "promptomatix/run_report.py", "promptomatix/followup.py",
               *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "promptomatix" / "run").glob("*.py"))]  # fmt: skip


@pytest.mark.parametrize("path", STAGE_FILES)
def test_the_run_stages_stay_small(path):
    tree = ast.parse((ROOT / path).read_text())
    for node in ast.walk(tree):
        size = (node.end_lineno or 0) - node.lineno + 1 if hasattr(node, "lineno") else 0
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert size <= 60, f"{path}: function {node.name} is {size} lines"
        elif isinstance(node, ast.ClassDef):
            assert size <= 250, f"{path}: class {node.name} is {size} lines"


def test_the_dspy_backend_leaves_the_callers_stdout_and_dspy_trace_as_they_were(tmp_path, capsys):
    """Through process_input, DSPy printed "Bootstrapped 3 full traces…" on the caller's stdout (a caller that
    writes JSON there got it corrupted) and left its rows' predictions in the global dspy.settings.trace."""
    import dspy

    before = list(dspy.settings.trace)
    result = run(tmp_path, clients=dspy_fakes()[0], **DSPY)
    assert result.verdict is not None
    assert capsys.readouterr().out == ""
    assert dspy.settings.trace == before


def test_a_dspy_budget_that_cannot_pay_for_one_candidate_is_refused_before_any_call(tmp_path):
    from promptomatix.errors import ConfigurationError
    from tests.test_pipeline import fakes, run

    clients, task, _teacher = fakes()
    with pytest.raises(ConfigurationError, match="no search fits the budget") as e:
        run(tmp_path, clients=clients, backend="dspy", dspy_optimizer="bootstrap", max_calls=20)
    assert task.n == 0  # it scored the initial program, then kept it unsearched (or failed: "budget ... spent")
    advised = int(e.value.hint.split("max_calls=")[1].split(",")[0])
    out = run(tmp_path, clients=fakes()[0], backend="dspy", dspy_optimizer="bootstrap", max_calls=advised)
    assert out.metrics.calls <= advised and out.n_candidates >= 1


def test_picking_the_initial_program_of_a_dspy_run_exports_as_a_dspy_program(tmp_path, capsys):
    """`sessions pick SID 0` gave a version `sessions export --format dspy` refused: the run saved only its compiled
    program, though candidate #0 is the initial program the backend built (review 25, #7)."""
    import json

    from tests.cli_run import run_main

    r = run(tmp_path, clients=dspy_fakes()[0], **DSPY)
    sdir = str(tmp_path / "s")
    code, _, err = run_main(capsys, "sessions", "pick", r.session_id, "0", "--sessions-dir", sdir)
    assert code == 0, err
    code, out, err = run_main(capsys, "sessions", "export", r.session_id, "--format", "dspy", "--sessions-dir", sdir)
    assert code == 0, err
    state = json.loads(out)
    assert all(not p.get("demos") for k, p in state.items() if isinstance(p, dict) and "demos" in p)
