"""Every CLI command through typer's CliRunner with scripted fake models (PROMPTOMATIX_FAKE_LM), and the error
paths through `main`, the single error boundary: one clean line, the right exit code, no traceback."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from promptomatix.cli.app import app, main
from promptomatix.sessions import SessionStore

GOOD_PROMPT = "Say negative if the review complains or criticizes, otherwise say positive."
FEEDBACK = "Say what to do with sarcastic reviews."
SCRIPT = {
    "task": {"rules": [[["complains", "awful"], {"label": "negative"}]], "default": {"label": "positive"}},
    "teacher": {
        "rules": [
            ['{"feedback"', {"feedback": [{"quote": "", "comment": FEEDBACK}]}],
            # a refine with feedback rewrites the prompt (one that ends with the same prompt makes no version)
            [['{"prompt"', "sarcas"], {"prompt": "Negative if it complains or is sarcastic, else positive."}],
            [['{"prompt"', "- Keep it short."], {"prompt": "Negative if it complains, else positive."}],
            ['{"prompt"', {"prompt": GOOD_PROMPT}],
        ],
        "default": {},
    },
}
TASK = "Classify the sentiment of a movie review"


@pytest.fixture(autouse=True)
def fake_models(tmp_path, monkeypatch):
    path = tmp_path / "fake_lm.json"
    path.write_text(json.dumps(SCRIPT))
    monkeypatch.setenv("PROMPTOMATIX_FAKE_LM", str(path))
    monkeypatch.setenv("PROMPTOMATIX_SESSIONS_DIR", str(tmp_path / "sessions"))


@pytest.fixture
def data_csv(tmp_path):
    path = tmp_path / "reviews.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "label"])
        for i in range(24):
            w.writerow(
                [
                    f"{'great wonderful' if i % 2 == 0 else 'awful boring'} film number {i}",
                    "positive" if i % 2 == 0 else "negative",
                ]
            )
    return str(path)


runner = CliRunner()


def invoke(*args: str):
    r = runner.invoke(app, list(args), catch_exceptions=False)
    return r


def optimize_json(data_csv, *extra: str) -> dict:
    r = invoke("optimize", TASK, "--data", data_csv, "--synthetic-data-size", "24", "--json", *extra)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.fixture
def sid(data_csv) -> str:
    return optimize_json(data_csv)["session_id"]


def boundary(capsys, *args: str) -> tuple[int, str, str]:
    """Run `main` (the real entry point) and return exit code, stdout, stderr."""
    with pytest.raises(SystemExit) as e:
        main(list(args))
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# -- optimize ------------------------------------------------------------------------------------------------


def test_optimize_json_has_the_issue_keys(data_csv):
    out = optimize_json(data_csv)
    for key in ("session_id", "initial_prompt", "result", "backend", "task_type", "input_fields", "output_fields"):
        assert key in out, key
    m = out["metrics"]
    for key in ("initial_prompt_score", "optimized_prompt_score", "calls", "tokens", "cost", "time_taken"):
        assert key in m, key
    for key in ("initial_test_score", "optimized_test_score"):
        assert {"mean", "ci_low", "ci_high", "n"} <= set(m[key])
    assert GOOD_PROMPT in out["result"] and out["task_type"] == "classification"
    assert (out["input_fields"], out["output_fields"]) == (["review"], ["label"])
    assert m["optimized_test_score"]["mean"] == pytest.approx(1.0) and m["calls"] > 0
    assert out["version"] == 1


def test_optimize_human_output_shows_prompt_scores_and_next_step(data_csv):
    r = invoke("optimize", TASK, "--data", data_csv, "--synthetic-data-size", "24")
    assert r.exit_code == 0, r.output
    assert GOOD_PROMPT in r.stdout and "held-out test" in r.stdout and "promptomatix refine" in r.stdout
    assert "[system]" in r.stdout and "[user]" in r.stdout  # prompt text is not swallowed as rich markup
    assert "[final]" in r.stderr and "[final]" not in r.stdout  # progress goes to stderr, the result to stdout


def test_optimize_dry_run_json(data_csv):
    r = invoke("optimize", TASK, "--data", data_csv, "--synthetic-data-size", "24", "--dry-run", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["task_type"] == "classification" and set(d["labels"]) == {"positive", "negative"}
    assert (d["input_fields"], d["output_fields"]) == (["review"], ["label"])
    assert set(d["rows"]) == {"train", "valid", "test"} and sum(len(v) for v in d["rows"].values()) == 24
    assert d["estimated_calls"]["total"] > 0
    s = SessionStore().load(d["session_id"])
    assert s.status == "created" and not s.versions


def test_optimize_dry_run_human_output(data_csv):
    r = invoke("optimize", TASK, "--data", data_csv, "--synthetic-data-size", "24", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "estimated LM calls" in r.stdout and "task type" in r.stdout


def test_upstream_underscore_flags(data_csv):
    r = invoke(
        "optimize", "--raw_input", TASK, "--model_name", "gpt-4o-mini", "--synthetic_data_size", "24",
        "--search_type", "quick_search", "--local_train_data_path", data_csv, "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    s = SessionStore().load(out["session_id"])
    assert s.run_config["model"] == "gpt-4o-mini" and s.run_config["search_type"] == "quick"
    assert s.run_config["synthetic_data_size"] == 24 and s.raw_input == TASK


# -- sessions -----------------------------------------------------------------------------------------------


def test_sessions_list_show_export_delete(sid):
    r = invoke("sessions", "list", "--json")
    assert r.exit_code == 0 and [row["session_id"] for row in json.loads(r.stdout)] == [sid]
    r = invoke("sessions", "list")
    assert r.exit_code == 0 and sid in r.stdout and "completed" in r.stdout

    r = invoke("sessions", "show", sid)
    assert r.exit_code == 0 and sid in r.stdout and GOOD_PROMPT in r.stdout and "[system]" in r.stdout
    assert "v1 · simple_meta_prompt" in r.stdout and "n=7" in r.stdout
    r = invoke("sessions", "show", sid, "--json")
    assert json.loads(r.stdout)["session_id"] == sid
    r = invoke("sessions", "show", sid, "--candidates")
    assert r.exit_code == 0 and "candidates of v1" in r.stdout and "initial" in r.stdout
    assert "#1 r1 add_demos · " in r.stdout and " r1 rewrite_from_failures · 0 demos" in r.stdout  # demos first

    r = invoke("sessions", "export", sid)
    assert r.exit_code == 0 and GOOD_PROMPT in r.stdout and r.stdout.startswith("[system]")
    r = invoke("sessions", "export", sid, "--format", "json")
    assert json.loads(r.stdout)["versions"][0]["version"] == 1

    r = invoke("sessions", "delete", sid, "--yes")
    assert r.exit_code == 0 and f"deleted {sid}" in r.stdout
    assert json.loads(invoke("sessions", "list", "--json").stdout) == []


def test_sessions_delete_asks_first(sid):
    r = runner.invoke(app, ["sessions", "delete", sid], input="n\n")
    assert r.exit_code != 0 and SessionStore().exists(sid)


def test_export_dspy_of_a_meta_session_is_a_clean_error(sid, capsys):
    code, _, err = boundary(capsys, "sessions", "export", sid, "--format", "dspy")
    assert code == 1 and "no saved DSPy program" in one_error_line(err)
    code, _, err = boundary(capsys, "sessions", "export", sid, "--format", "yaml")
    assert code == 2 and "unknown export format" in one_error_line(err)


def test_sessions_show_diffs_versions_after_refine(sid):
    invoke("feedback", "add", sid, "--comment", "Mention sarcasm.")
    assert invoke("refine", sid, "--json").exit_code == 0
    r = invoke("sessions", "show", sid)
    assert r.exit_code == 0 and "prompt diff v1 → v2" in r.stdout


# -- feedback and refine ------------------------------------------------------------------------------------


def test_feedback_add_by_text_and_by_offsets_then_list_and_dismiss(sid):
    prompt = SessionStore().load(sid).latest_version().prompt
    r = invoke("feedback", "add", sid, "--text", "complains", "--comment", "Also count sarcasm as complaining.")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("added fb1") and '"complains"' in r.stdout
    start = prompt.index("otherwise")
    r = invoke("feedback", "add", sid, "--start", str(start), "--end", str(start + 9), "--comment", "Be explicit.")
    assert r.exit_code == 0 and "fb2" in r.stdout and '"otherwise"' in r.stdout
    r = invoke("feedback", "add", sid, "--comment", "Too terse overall.")  # no span: a general comment
    assert r.exit_code == 0 and "fb3" in r.stdout

    r = invoke("feedback", "list", sid, "--json")
    items = json.loads(r.stdout)
    assert [(f["id"], f["status"]) for f in items] == [("fb1", "open"), ("fb2", "open"), ("fb3", "open")]
    assert items[1]["text"] == "otherwise" and items[2]["text"] is None

    r = invoke("feedback", "dismiss", sid, "fb3")
    assert r.exit_code == 0 and "dismissed fb3" in r.stdout
    r = invoke("feedback", "list", sid)
    assert "fb3\tdismissed" in r.stdout and "fb1\topen" in r.stdout
    assert "fb3" not in invoke("feedback", "list", sid, "--status", "open").stdout


def test_feedback_add_bad_span_is_one_line(sid, capsys):
    code, _, err = boundary(capsys, "feedback", "add", sid, "--text", "not in the prompt", "--comment", "x y")
    assert code == 2 and "does not occur" in one_error_line(err)  # a wrong command-line value (review 23, F14)
    code, _, err = boundary(capsys, "feedback", "add", sid, "--start", "5", "--end", "99999", "--comment", "x y")
    assert code == 2 and "is not inside" in one_error_line(err)
    code, _, err = boundary(capsys, "feedback", "add", sid)
    assert code == 2 and "no feedback given" in one_error_line(err)
    code, out, err = boundary(capsys, "feedback", "list", sid, "--status", "opne")  # listed nothing and exited 0
    assert code == 2 and "unknown feedback status 'opne'" in one_error_line(err) and not out


def test_feedback_generate_adds_generated_items(sid):
    r = invoke("feedback", "generate", sid)
    assert r.exit_code == 0, r.output
    assert "1 feedback items added" in r.stdout and FEEDBACK in r.stdout
    items = json.loads(invoke("feedback", "list", sid, "--json").stdout)
    assert [(f["source"], f["comment"]) for f in items] == [("generated", FEEDBACK)]
    out = json.loads(invoke("feedback", "generate", sid, "--json").stdout)
    assert {"session_id", "comprehensive_feedback", "individual_feedbacks", "metrics"} <= set(out)


def test_refine_applies_open_feedback_into_a_new_version(sid):
    invoke("feedback", "add", sid, "--text", "complains", "--comment", "Also count sarcasm as complaining.")
    invoke("feedback", "add", sid, "--comment", "Keep it short.")
    invoke("feedback", "dismiss", sid, "fb2")
    r = invoke("refine", sid, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["version"] == 2 and out["feedback_applied"] == ["fb1"]
    s = SessionStore().load(sid)
    v2 = s.get_version(2)
    assert v2.parent == 1 and v2.feedback_applied == ["fb1"]
    assert [(f.id, f.status, f.applied_in) for f in s.feedback] == [("fb1", "applied", 2), ("fb2", "dismissed", None)]
    r = invoke("refine", sid)  # nothing open now: the same prompt comes back, so no version 3
    assert r.exit_code == 0 and "no change" in r.stdout and len(SessionStore().load(sid).versions) == 2


def test_refine_human_output_lists_applied_feedback(sid):
    invoke("feedback", "add", sid, "--comment", "Keep it short.")
    r = invoke("refine", sid)
    assert r.exit_code == 0 and "applied feedback: fb1" in r.stderr


# -- resume -------------------------------------------------------------------------------------------------


def test_resume_a_completed_session_is_a_clean_error(sid, capsys):
    code, _, err = boundary(capsys, "resume", sid)
    assert code == 1 and "already completed" in one_error_line(err) and f"refine {sid}" in err


def test_resume_a_dry_run_session_completes_it(data_csv):
    d = json.loads(
        invoke("optimize", TASK, "--data", data_csv, "--synthetic-data-size", "24", "--dry-run", "--json").stdout
    )
    r = invoke("resume", d["session_id"], "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["version"] == 1 and SessionStore().load(d["session_id"]).status == "completed"


# -- error paths through main -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["sessions", "show", "20990101-000000-abcdef"],
        ["sessions", "export", "20990101-000000-abcdef"],
        ["feedback", "list", "20990101-000000-abcdef"],
        ["refine", "20990101-000000-abcdef"],
        ["resume", "20990101-000000-abcdef"],
    ],
)
def test_unknown_session_id_is_one_line(capsys, args):
    code, _, err = boundary(capsys, *args)
    assert code == 1 and "20990101-000000-abcdef" in one_error_line(err)


@pytest.mark.parametrize("cmd", [["sessions", "show"], ["sessions", "delete"], ["feedback", "list"], ["resume"]])
def test_traversal_id_is_rejected(capsys, tmp_path, cmd):
    victim = tmp_path / "x"
    victim.mkdir()
    (victim / "session.json").write_text("{}")
    code, _, err = boundary(capsys, *cmd, "../x", "--sessions-dir", str(tmp_path / "sessions"))
    assert code == 1 and "invalid session id" in one_error_line(err)
    assert victim.exists()


def test_bad_backend_is_one_line(capsys, data_csv):
    code, _, err = boundary(capsys, "optimize", TASK, "--data", data_csv, "--backend", "nosuch")
    line = one_error_line(err)
    assert code == 2 and "backend" in line  # a wrong command line (was 1, a failed run's code)


def test_no_task_exits_2(capsys):
    code, _, err = boundary(capsys, "optimize")
    assert code == 2 and "no task given" in one_error_line(err)


@pytest.mark.parametrize("flag", [["--train-data-size", "0"], ["--valid-data-size", "0"], ["--train-ratio", "1.5"],
                                  ["--train-ratio", "nan"]])  # fmt: skip
def test_split_sizes_no_run_can_use_are_a_bad_command_line(capsys, data_csv, flag):
    """They were accepted, then failed with exit 1: "14 usable rows (0 train, …); add rows to the data"."""
    code, _, err = boundary(capsys, "optimize", TASK, "--data", data_csv, "--dry-run", *flag)
    assert code == 2 and flag[0] in err and "add rows" not in err


def test_unknown_flag_exits_2(capsys):
    code, _, err = boundary(capsys, "optimize", TASK, "--no-such-flag")
    assert code == 2 and "No such option" in err and "Traceback" not in err


def test_bad_fake_script_is_one_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PROMPTOMATIX_FAKE_LM", str(tmp_path / "missing.json"))
    code, _, err = boundary(capsys, "optimize", TASK)
    assert code == 1 and "fake model script" in one_error_line(err)


def test_interrupt_exits_130_with_the_resume_hint(capsys, data_csv, monkeypatch):
    import promptomatix.pipeline as pipeline

    def ctrl_c(self):
        self.get_boundary()  # the session exists by now
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline.Run, "prepare", ctrl_c)
    code, _, err = boundary(capsys, "optimize", TASK, "--data", data_csv, "-q")
    line = one_error_line(err)
    assert code == 130 and "interrupted" in line and "promptomatix resume" in line
    assert SessionStore().list()[0].status == "interrupted"


def test_help_lists_every_command_and_hides_the_test_hook():
    r = invoke("--help")
    for name in ("optimize", "refine", "resume", "sessions", "feedback", "models"):
        assert name in r.stdout
    assert "FAKE" not in invoke("optimize", "--help").stdout


@pytest.mark.parametrize(
    ("fields", "says"),
    [(["--output-fields", "label,label"], "the output fields name label more than once"),
     (["--input-fields", "review", "--output-fields", "review"], "review is both an input and an output field")],
)  # fmt: skip
def test_a_field_named_twice_is_a_usage_error_before_any_session(capsys, tmp_path, data_csv, fields, says):
    """It was found by the task spec after the session existed: exit 1 and a `failed` session for a typo."""
    code, out, err = boundary(capsys, "optimize", TASK, "--data", data_csv, *fields)
    assert code == 2 and out == "" and says in one_error_line(err)
    assert not (tmp_path / "sessions").exists() or not any((tmp_path / "sessions").iterdir())


@pytest.mark.parametrize(
    ("labels", "says"),
    [("positive,positive", "the labels name 'positive' more than once"),
     ("Positive,positive.", "the labels name 'Positive' and 'positive.'")],
)  # fmt: skip
def test_a_label_named_twice_is_a_usage_error_not_a_one_label_classifier(capsys, tmp_path, data_csv, labels, says):
    """It made a one-label set past the two-label check: the other label's rows dropped, 1.000 → 1.000, exit 0."""
    code, out, err = boundary(capsys, "optimize", TASK, "--data", data_csv, "--labels", labels)
    assert code == 2 and out == "" and says in one_error_line(err)
    assert not (tmp_path / "sessions").exists() or not any((tmp_path / "sessions").iterdir())
