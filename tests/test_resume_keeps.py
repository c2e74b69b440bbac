"""`resume` never silently returns a version the held-out test calls worse than the best-so-far the interrupted run
saved: that version is scored on the same held-out rows and kept (as `refine` keeps its parent), the report says
which version, why and the numbers, and the command exits 0. A result that is not worse becomes version 2."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from promptomatix import resume
from promptomatix.api import load_session
from promptomatix.errors import RunInterrupted
from promptomatix.lm.fake import FakeLM
from tests.test_pipeline import GOOD_PROMPT, MARKER, fakes, run

LIMIT_S = 240  # each test takes seconds with the fake models; a hang fails instead of blocking the suite


pytestmark = pytest.mark.usefixtures("time_limit")  # conftest.py: SIGALRM after LIMIT_S


HASTY = "HASTY. Label the review."


def _number(user: str) -> int:
    return int(re.search(r"number (\d+)", user).group(1))


def _truth(user: str) -> str:
    return "negative" if "awful" in user else "positive"


def _wrong(user: str) -> str:
    return "positive" if _truth(user) == "negative" else "negative"


class ResumeTask:
    """A task model for the resumed run: the saved prompt (GOOD_PROMPT) is right on every row; HASTY is right on
    train and valid but wrong on every held-out row; other prompts miss rows 1, 3, 100 and 101."""

    def __init__(self) -> None:
        self.saved_on_test = 0  # calls that scored the saved version on a held-out row

    def __call__(self, messages: list[dict[str, str]]) -> str:
        system, user = messages[0]["content"], messages[-1]["content"]
        if "complains" in system:
            self.saved_on_test += MARKER in user and "STEADY" not in system
            return json.dumps({"label": _truth(user)})
        if "HASTY" in system:
            return json.dumps({"label": _wrong(user) if MARKER in user else _truth(user)})
        return json.dumps({"label": _wrong(user) if _number(user) in (1, 3, 100, 101) else _truth(user)})


def _teacher(prompt: str):
    def answer(messages: list[dict[str, str]]) -> str:
        text = "\n".join(m["content"] for m in messages)
        return json.dumps({"prompt": prompt}) if '{"prompt"' in text else "{}"

    return answer


def interrupted_with_good_v1(tmp_path) -> str:
    """A run stopped by Ctrl-C after round 1: version 1 is GOOD_PROMPT, the best so far."""
    clients, _task, _teacher_counter = fakes(task_interrupt=65)
    with pytest.raises(RunInterrupted) as e:
        run(tmp_path, clients=clients)
    s = load_session(e.value.session_id, sessions_dir=str(tmp_path / "s"))
    assert [v.version for v in s.versions] == [1] and GOOD_PROMPT in s.versions[0].prompt
    assert s.versions[0].settings["interrupted"] and not s.versions[0].test_examples
    assert s.versions[0].duration_s == s.versions[0].usage.seconds > 0  # `sessions show` said "0s"
    return e.value.session_id


def _clients(task: ResumeTask, proposal: str) -> dict[str, FakeLM]:
    # new model names: nothing replays from the interrupted run's cache, the resumed search is a new one
    return {"task": FakeLM(default=task, model="fake/task-r"), "teacher": FakeLM(default=_teacher(proposal),
                                                                                model="fake/teacher-r")}  # fmt: skip


def test_a_resume_whose_result_scores_lower_keeps_the_saved_version(tmp_path):
    sid = interrupted_with_good_v1(tmp_path)
    spent = load_session(sid, sessions_dir=str(tmp_path / "s")).total_spent().calls
    task = ResumeTask()
    out = resume(sid, clients=_clients(task, HASTY), sessions_dir=str(tmp_path / "s"))
    # the report counts the calls that scored version 1 too (they were left out: counted before they were made)
    assert out.metrics.calls == load_session(sid, sessions_dir=str(tmp_path / "s")).total_spent().calls - spent
    assert "HASTY" in out.candidate_prompt  # the resumed search chose it on valid and train ...
    assert task.saved_on_test == 6  # ... and version 1 was scored on the same 6 held-out rows
    assert out.kept_version == 1 and out.version is None
    # what the result hands out is the version the session keeps, with its own score and verdict against the
    # initial prompt (it handed out the rejected candidate, with that candidate's verdict, before)
    assert GOOD_PROMPT in out.best_prompt and out["result"] == out.prompt_text and out.test_score == 1.0
    assert GOOD_PROMPT in out["result"] and "HASTY" not in out["result"]
    assert out.verdict.optimized_mean == 1.0 and out.improved == out.verdict.improved
    note = next(n for n in out.notes if "kept version 1 as latest" in n)
    assert "scored lower on the held-out test than version 1" in note and "0.000 < 1.000 on the same 6 rows" in note
    assert "saved before the interruption" in note
    s = load_session(sid, sessions_dir=str(tmp_path / "s"))
    assert [v.version for v in s.versions] == [1] and s.status == "completed"
    assert s.events[-1]["kind"] == "kept_previous" and "HASTY" in s.events[-1]["rejected_prompt"]
    # version 1 now carries what the resume measured, like a completed version, and is no longer an unscored
    # best-so-far (whose export would say `resume` finishes it: the session is completed)
    (v,) = s.versions
    assert v.test.mean == 1.0 and v.test.n == 6 and len(v.test_examples) == 6
    assert v.initial_test.mean == out.initial_test_score and v.verdict["optimized_mean"] == 1.0
    assert not v.settings["interrupted"] and v.settings["saved_at_interrupt"]
    # its verdict's valid gain is its own (it was the rejected candidate's: "chosen for its valid score (+x)")
    assert out.verdict.valid_gain == pytest.approx(v.valid.raw - v.initial_valid.raw)


def test_a_resume_whose_result_is_not_worse_adds_version_2(tmp_path):
    sid = interrupted_with_good_v1(tmp_path)
    task = ResumeTask()
    steady = "STEADY. " + GOOD_PROMPT  # right on every row, like version 1: equal, so not worse
    out = resume(sid, clients=_clients(task, steady), sessions_dir=str(tmp_path / "s"))
    assert "STEADY" in out.best_prompt and task.saved_on_test == 6  # version 1 was scored, and tied
    assert out.kept_version is None and out.version == 2
    assert not any("kept version" in n for n in out.notes)
    s = load_session(sid, sessions_dir=str(tmp_path / "s"))
    assert [v.version for v in s.versions] == [1, 2] and "STEADY" in s.versions[-1].prompt


def test_the_cli_resume_that_keeps_the_saved_version_says_so_and_exits_0(tmp_path, monkeypatch):
    from promptomatix.cli.app import app

    sid = interrupted_with_good_v1(tmp_path)
    script = {
        "task": {"rules": [[["complains", "awful"], {"label": "negative"}], ["complains", {"label": "positive"}],
                           [["HASTY", MARKER, "awful"], {"label": "positive"}], [["HASTY", MARKER], {"label": "negative"}],
                           [["HASTY", "awful"], {"label": "negative"}], ["HASTY", {"label": "positive"}]],
                 "default": {"label": "positive"}},
        "teacher": {"rules": [['{"prompt"', {"prompt": HASTY}]], "default": {}},
    }  # fmt: skip
    path = tmp_path / "fake_lm.json"
    path.write_text(json.dumps(script))
    monkeypatch.setenv("PROMPTOMATIX_FAKE_LM", str(path))
    r = CliRunner().invoke(app, ["resume", sid, "--sessions-dir", str(tmp_path / "s")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    flat = " ".join(r.output.split())
    assert "worse than version 1 on the held-out test and was not saved" in flat and "version 1 stays latest" in flat
    # the prompt shown is the one it hands out, version 1's, the one the table's numbers describe (it showed the
    # rejected candidate above version 1's held-out score)
    assert "HASTY" not in flat.split("verdict:")[0] and "prompt (session" in flat
    assert "kept version 1 as latest" in flat and "saved before the interruption" in flat
    assert [v.version for v in load_session(sid, sessions_dir=str(tmp_path / "s")).versions] == [1]
    exported = CliRunner().invoke(app, ["sessions", "export", sid, "--sessions-dir", str(tmp_path / "s")])
    assert exported.exit_code == 0 and GOOD_PROMPT in exported.output and "resume" not in exported.output


def test_a_saved_version_this_run_cannot_score_is_named_in_a_note_not_skipped_silently(tmp_path):
    from promptomatix.sessions import SessionStore

    sid = interrupted_with_good_v1(tmp_path)
    store = SessionStore(tmp_path / "s")
    store.update(sid, lambda s: setattr(s.versions[0], "backend", "dspy"))  # as if a DSPy program were saved
    task = ResumeTask()
    out = resume(sid, clients=_clients(task, HASTY), sessions_dir=str(tmp_path / "s"))
    assert task.saved_on_test == 0 and out.version == 2 and out.kept_version is None
    assert any(n.startswith("not compared with version 1 (saved before the interruption)") and "dspy" in n
               for n in out.notes)  # fmt: skip


def test_the_final_scoring_reserve_covers_the_saved_version_only_when_it_needs_scoring(tmp_path):
    """Under --max-calls the search leaves calls for the held-out scoring: 3 passes when the saved version's
    prompt is not the initial one (it must be scored too), else 2."""
    from types import SimpleNamespace

    from promptomatix.followup import resumed_state
    from promptomatix.run.previous import held_out_passes
    from promptomatix.run.recorder import SessionRecorder
    from promptomatix.sessions import SessionStore

    store = SessionStore(tmp_path / "s")
    good = interrupted_with_good_v1(tmp_path)
    clients, _task, _teacher = fakes(task_interrupt=30)  # the baseline is measured: version 1 is the initial prompt
    with pytest.raises(RunInterrupted) as e:
        run(tmp_path, clients=clients)
    initial = e.value.session_id
    passes = {}
    for sid in (good, initial):
        env = SimpleNamespace(recorder=SessionRecorder(store, sid))
        passes[sid] = held_out_passes(env, resumed_state(store.load(sid)))
    assert passes == {good: 3, initial: 2}
    fresh = SimpleNamespace(recorder=SessionRecorder(store, None))
    assert held_out_passes(fresh, resumed_state(store.load(good))) == 2


def test_resume_help_states_the_kept_version_rule():
    from promptomatix.cli.app import app

    r = CliRunner().invoke(app, ["resume", "--help"], terminal_width=200)
    assert r.exit_code == 0
    assert "when it scores lower the saved version stays the latest" in " ".join(r.output.split())


def test_a_refine_stopped_before_it_found_better_adds_no_version(tmp_path):
    """A stopped refine saved its best so far, a copy of version 1 (or the initial prompt of a resumed run, worse
    than v1), as version 2: the latest, which `export` and `refine` use, and flagged interrupted."""
    import promptomatix

    r = run(tmp_path)
    clients = fakes(task_interrupt=9)[0]  # the refine's baseline on 6 valid rows is scored, round 1 is not
    with pytest.raises(RunInterrupted) as e:
        promptomatix.optimize_with_feedback(r.session_id, clients=clients, sessions_dir=str(tmp_path / "s"))
    assert "saved as version" not in e.value.message
    s = load_session(r.session_id, sessions_dir=str(tmp_path / "s"))
    assert [v.version for v in s.versions] == [1] and not s.latest_version().settings.get("interrupted")
    assert "interrupted_not_saved" in str(s.events)


def test_feedback_dismissed_after_an_interrupted_refine_stays_out_of_its_resume(tmp_path):
    """The resumed refine handed the dismissed item's comment to the teacher and marked it applied (`mark_applied`
    revives dismissed items): the user's dismissal was undone without a word."""
    import promptomatix
    from promptomatix.sessions import SessionStore
    from promptomatix.sessions.feedback import dismiss_feedback

    r = run(tmp_path)
    sessions = str(tmp_path / "s")
    prompt = load_session(r.session_id, sessions_dir=sessions).latest_version().prompt
    quote = prompt[: len(prompt) // 3]
    kept = promptomatix.save_feedback(quote, 0, len(quote), "KEEPME be brief", r.session_id,
                                      sessions_dir=sessions)["id"]  # fmt: skip
    gone = promptomatix.save_feedback("", 0, 0, "DROPME mention sarcasm", r.session_id, sessions_dir=sessions)
    deleted = promptomatix.save_feedback("", 0, 0, "DELETED say more", r.session_id, sessions_dir=sessions)["id"]
    with pytest.raises(RunInterrupted):
        promptomatix.optimize_with_feedback(r.session_id, clients=fakes(task_interrupt=9)[0], sessions_dir=sessions)
    SessionStore(sessions).update(r.session_id, lambda s: dismiss_feedback(s, [gone["id"]]))

    def delete(s):  # as the web UI's delete does (the resume failed at its end: NotFoundError, session `failed`)
        s.feedback[:] = [f for f in s.feedback if f.id != deleted]

    SessionStore(sessions).update(r.session_id, delete)
    clients, _task, _teacher = fakes()
    seen: list[str] = []
    teacher = clients["teacher"].default
    clients["teacher"] = FakeLM(default=lambda m: seen.append(str(m)) or teacher(m), model="fake/teacher")
    result = resume(r.session_id, clients=clients, sessions_dir=sessions)
    assert any("KEEPME" in t for t in seen) and not any("DROPME" in t or "DELETED" in t for t in seen)
    s = load_session(r.session_id, sessions_dir=sessions)
    assert {f.id: f.status for f in s.feedback}[gone["id"]] == "dismissed"
    assert any(f"feedback {gone['id']}, {deleted} left out" in n and "deleted" in n for n in result.notes)
    assert load_session(r.session_id, sessions_dir=sessions).status == "completed"
    assert kept != gone["id"]


@pytest.mark.parametrize(
    ("block", "value", "where"),
    [("task_spec", {"output_fields": []}, "task_spec.output_fields"), ("data", {"train": "abc"}, "data"),
     ("progress", {"initial": {"instructions": 5}}, "progress.initial")],
)  # fmt: skip
def test_a_hand_edited_block_of_session_json_is_reported_as_corrupt(tmp_path, block, value, where):
    """A block that parses as JSON but not as its model raised a pydantic ValidationError or an AttributeError
    (the CLI printed a multi-line `unexpected error`), not the SessionError every other damaged file gives."""
    import promptomatix
    from promptomatix.errors import SessionError
    from promptomatix.sessions import SessionStore

    clients = fakes(task_interrupt=20)[0]
    with pytest.raises(RunInterrupted) as e:
        run(tmp_path, clients=clients)
    sid = e.value.session_id
    path = SessionStore(str(tmp_path / "s")).session_file(sid)
    doc = json.loads(path.read_text())
    doc[block] = {**(doc.get(block) or {}), **value}
    path.write_text(json.dumps(doc))
    with pytest.raises(SessionError, match=rf"is corrupt \({re.escape(where)}") as err:
        promptomatix.resume(sid, clients=fakes()[0], sessions_dir=str(tmp_path / "s"))
    assert "left untouched" in err.value.message and "sessions delete" in err.value.hint


def test_exporting_the_saved_best_so_far_of_a_finished_run_does_not_advise_resume(tmp_path):
    from promptomatix.cli.app import app

    sid = interrupted_with_good_v1(tmp_path)
    resume(sid, clients=_clients(ResumeTask(), "STEADY. " + GOOD_PROMPT), sessions_dir=str(tmp_path / "s"))
    r = CliRunner().invoke(app, ["sessions", "export", sid, "--version", "1", "--sessions-dir", str(tmp_path / "s")])
    assert r.exit_code == 0 and GOOD_PROMPT in r.output
    # it said "`promptomatix resume ID` finishes it", and resume then refused: the session is completed
    assert "resume" not in r.output and "the run was finished later: v2 is the latest" in " ".join(r.output.split())


def test_a_refine_that_keeps_its_parent_reports_the_parents_prompt_and_scores_together(tmp_path):
    from promptomatix.followup import refine

    sid = interrupted_with_good_v1(tmp_path)
    resume(sid, clients=_clients(ResumeTask(), "STEADY. " + GOOD_PROMPT), sessions_dir=str(tmp_path / "s"))
    out = refine(sid, clients=_clients(ResumeTask(), HASTY), sessions_dir=str(tmp_path / "s"))
    assert out.kept_version == 2 and "HASTY" in out.candidate_prompt and "STEADY" in out.best_prompt
    # the scores are the kept prompt's: they were the rejected candidate's (test 0.0 beside version 2's prompt)
    assert out.test_score == out.initial_test_score == 1.0 and not out.improved
    assert out.verdict.same_prompt and out.verdict.outcome != "improved"
