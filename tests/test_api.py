"""The rest of the Python API with fake models: upstream's follow-up functions (save_feedback →
optimize_with_feedback, generate_feedback, process_input(session_id=...)), sessions, lazy exports, typed errors."""

from __future__ import annotations

import json

import pytest

import promptomatix
from promptomatix.errors import ConfigurationError, SessionError
from promptomatix.lm.fake import FakeLM
from tests.test_pipeline import GIVEN, TASK, fakes, run

SHORTER = "Say negative if the review complains, else positive."  # as right as the first run's prompt, shorter
SARCASM = "Say negative if it complains or is sarcastic, else positive."  # takes up "Include sarcasm."


def refining_fakes():
    """The first run's models, with a teacher whose rewrite differs from (and beats) the first run's prompt."""

    def teacher(messages):
        text = "\n".join(m["content"] for m in messages)
        if '{"prompt"' not in text:
            return "{}"
        return json.dumps({"prompt": SARCASM if "sarcasm" in text else SHORTER})

    return {**fakes()[0], "teacher": FakeLM(default=teacher, model="fake/teacher")}


def test_public_names_load_lazily():
    for name in (
        "process_input", "optimize_with_feedback", "generate_feedback", "resume", "load_session", "list_sessions",
        "save_feedback", "RunConfig", "OptimizationResult", "FakeLM", "register_metric", "PromptomatixError",
    ):  # fmt: skip
        assert callable(getattr(promptomatix, name)), name
    with pytest.raises(AttributeError):
        promptomatix.nosuch  # noqa: B018


def test_list_and_load_sessions(tmp_path):
    r = run(tmp_path)
    d = str(tmp_path / "s")
    rows = promptomatix.list_sessions(sessions_dir=d)
    assert [(x.session_id, x.status, x.n_versions) for x in rows] == [(r.session_id, "completed", 1)]
    assert promptomatix.load_session(r.session_id, sessions_dir=d).raw_input == TASK
    with pytest.raises(SessionError):
        promptomatix.load_session("20990101-000000-abcdef", sessions_dir=d)


def test_upstream_feedback_flow(tmp_path):
    """Upstream's notebook: process_input → save_feedback(prompt_id=session) → optimize_with_feedback(session)."""

    d = str(tmp_path / "s")
    r = run(tmp_path)
    quote = "complains"
    start = r["result"].index(quote)
    fb = promptomatix.save_feedback(
        text=quote, start_offset=start, end_offset=start + len(quote), feedback="Include sarcasm.",
        prompt_id=r["session_id"], sessions_dir=d,
    )  # fmt: skip
    assert set(fb) == {"id", "text", "start_offset", "end_offset", "feedback", "prompt_id", "created_at"}
    r2 = promptomatix.optimize_with_feedback(
        r["session_id"], clients=refining_fakes(), sessions_dir=d, model_api_key="sk-x"
    )
    assert set(r2.keys()) == set(r.keys())
    assert r2.version == 2 and r2.feedback_applied == [fb["id"]] and r2["session_id"] == r["session_id"]
    s = promptomatix.load_session(r["session_id"], sessions_dir=d)
    assert s.get_version(2).parent == 1 and s.feedback[0].status == "applied"


def test_generate_feedback_has_upstreams_shape(tmp_path):
    d = str(tmp_path / "s")
    r = run(tmp_path)
    task = fakes()[0]["task"]
    teacher = promptomatix.FakeLM(default=json.dumps({"feedback": [{"quote": "", "comment": "Name the labels."}]}))
    out = promptomatix.generate_feedback(r.session_id, clients={"task": task, "teacher": teacher}, sessions_dir=d)
    assert {"session_id", "comprehensive_feedback", "individual_feedbacks", "synthetic_data_used", "metrics"} <= set(
        out
    )
    assert json.loads(out["comprehensive_feedback"])["primary_feedback"] == ["Name the labels."]
    assert {"time_taken", "cost", "samples_processed"} <= set(out["metrics"])
    s = promptomatix.load_session(r.session_id, sessions_dir=d)
    assert [(f.source, f.status) for f in s.feedback] == [("generated", "open")]


def test_process_input_with_an_existing_session_id_refuses_naming_optimize_with_feedback(tmp_path):
    """Upstream's session_id named the new session; continuing one is optimize_with_feedback (review 24, F2)."""
    d = str(tmp_path / "s")
    r = run(tmp_path)
    with pytest.raises(SessionError, match="already exists") as e:
        promptomatix.process_input(clients=refining_fakes(), session_id=r.session_id, sessions_dir=d, rounds=1)
    assert f"optimize_with_feedback({r.session_id!r})" in str(e.value)
    r2 = promptomatix.optimize_with_feedback(r.session_id, clients=refining_fakes(), sessions_dir=d, rounds=1)
    assert r2.session_id == r.session_id and r2.version == 2


def test_process_input_with_a_new_session_id_names_the_new_session(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a run must go to the sessions_dir passed, never ./sessions
    r = run(tmp_path, session_id="exp-1")
    assert r.session_id == "exp-1" and r.version == 1
    assert promptomatix.load_session("exp-1", sessions_dir=str(tmp_path / "s")).status == "completed"
    assert not (tmp_path / "sessions").exists()


def test_follow_up_overrides_are_checked(tmp_path):
    d = str(tmp_path / "s")
    r = run(tmp_path)
    with pytest.raises(ConfigurationError, match="rounds"):
        promptomatix.optimize_with_feedback(r.session_id, clients=fakes()[0], sessions_dir=d, roundz=1)
    with pytest.raises(SessionError):
        promptomatix.optimize_with_feedback("20990101-000000-abcdef", clients=fakes()[0], sessions_dir=d)


@pytest.mark.parametrize(("kw", "field"), [({"seed": -1}, "seed"), ({"seed": 2**32}, "seed"),
                                             ({"lambda_penalty": float("inf")}, "lambda_penalty"),
                                             ({"synthetic_data_size": 100_000_000}, "synthetic_data_size")])  # fmt: skip
def test_out_of_range_settings_are_one_error_naming_the_setting(tmp_path, kw, field):
    with pytest.raises(ConfigurationError, match=f"invalid {field}"):
        run(tmp_path, **kw)


def test_results_do_not_share_state_across_runs(tmp_path):
    a = run(tmp_path)
    b = promptomatix.process_input(
        clients=fakes()[0], human_input=TASK, sessions_dir=str(tmp_path / "s"), **GIVEN, lambda_penalty=0.0
    )
    assert a.session_id != b.session_id
    assert b.metrics.optimized_prompt_score_penalized == pytest.approx(1.0)
    assert a.metrics.optimized_prompt_score_penalized < 1.0


def test_a_refine_without_feedback_that_changes_nothing_says_no_feedback_stays_open(tmp_path):
    r = run(tmp_path)
    r2 = promptomatix.optimize_with_feedback(r.session_id, clients=fakes()[0], sessions_dir=str(tmp_path / "s"))
    assert r2.no_change and any(n.startswith("no change") for n in r2.notes)
    assert not any("feedback stays open" in n for n in r2.notes)  # there was none


def test_wrong_argument_types_are_configuration_errors_naming_the_argument(tmp_path):
    """Each raised a bare ValueError/TypeError from deep inside (`dictionary update sequence`, `object of type
    'int' has no len()`, `slice indices must be integers`), and max_examples=0 paid a critic call on no rows."""
    sessions = str(tmp_path / "s")
    with pytest.raises(ConfigurationError, match="clients must be a dict by role"):
        promptomatix.process_input(raw_input=TASK, clients="x", sessions_dir=sessions, **GIVEN)
    with pytest.raises(ConfigurationError, match=r"\['tsak'\]"):
        promptomatix.process_input(raw_input=TASK, clients={"tsak": FakeLM(default="x")}, sessions_dir=sessions,
                                   **GIVEN)  # fmt: skip
    with pytest.raises(ConfigurationError, match="sessions_dir must be a path"):
        promptomatix.list_sessions(sessions_dir=5)
    sid = run(tmp_path).session_id
    with pytest.raises(ConfigurationError, match="span feedback text must be the quoted part"):
        promptomatix.save_feedback(123, 0, 1, "comment", sid, sessions_dir=sessions)
    clients = fakes()[0]
    for bad in (0, -3, "a", 2.5, True):
        with pytest.raises(ConfigurationError, match="max_examples must be a whole number"):
            promptomatix.generate_feedback(sid, clients=clients, sessions_dir=sessions, max_examples=bad)
    assert clients["teacher"].calls == [] and clients["task"].calls == []
