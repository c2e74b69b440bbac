"""`--track mlflow:URI` on a single run (process_input, optimize, refine, resume) logs its session to a local MLflow
store like a batch job: params without keys, final metrics, one point per candidate, the registered prompt. A
failure to track is a note on the result, never a failed run; a tracker named wrongly fails before the run. Every
store and artifact lives in tmp (the cwd is tmp too, so nothing writes `mlruns/` into the repo)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from promptomatix.errors import ConfigurationError, RunInterrupted
from promptomatix.sessions import SessionStore
from tests.test_pipeline import SECRET, fakes, run

mlflow = pytest.importorskip("mlflow")
pytestmark = pytest.mark.mlflow


@pytest.fixture
def uri(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is ./mlruns
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def runs_of(uri):
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.get_experiment_by_name("promptomatix")
    return client, ({r.info.run_name: r for r in client.search_runs([exp.experiment_id])} if exp else {})


def test_a_tracked_run_lands_in_mlflow(tmp_path, uri):
    r = run(tmp_path, track=f"mlflow:{uri}", api_key=SECRET)
    assert not any("tracking" in n for n in r.notes)
    client, runs = runs_of(uri)
    logged = runs[r.session_id]
    assert logged.info.status == "FINISHED" and logged.data.tags["session_id"] == r.session_id
    assert logged.data.params["backend"] == "simple_meta_prompt" and "api_key" not in logged.data.params
    assert SECRET not in json.dumps(logged.data.params)
    assert logged.data.metrics["optimized_test"] == pytest.approx(r.test_score)
    history = client.get_metric_history(logged.info.run_id, "candidate_valid_penalized")
    assert len(history) == r.n_candidates - _unscored(tmp_path, r.session_id) > 0
    prompt = client.load_prompt(logged.data.tags["promptomatix.prompt"])
    assert prompt.template == r.best_prompt
    assert (tmp_path / "mlruns").is_dir()  # the artifacts went to the tmp cwd


def _unscored(tmp_path, sid):
    v = SessionStore(tmp_path / "s").load(sid).latest_version()
    return sum(1 for c in v.candidates if c.get("valid_penalized") is None)


def test_an_interrupted_then_resumed_run_is_tracked_each_time(tmp_path, uri):
    clients, _, _ = fakes(task_interrupt=30)
    with pytest.raises(RunInterrupted) as e:
        run(tmp_path, clients=clients, track=f"mlflow:{uri}")
    sid = e.value.session_id
    _, runs = runs_of(uri)
    assert runs[sid].info.status == "FAILED" and runs[sid].data.tags["status"] == "interrupted"
    from promptomatix import resume

    r = resume(sid, clients=fakes()[0], sessions_dir=str(tmp_path / "s"), track=f"mlflow:{uri}")
    client, _ = runs_of(uri)
    exp = client.get_experiment_by_name("promptomatix")
    statuses = sorted(x.info.status for x in client.search_runs([exp.experiment_id]))
    assert statuses == ["FAILED", "FINISHED"] and r.version == 2


def test_a_tracking_failure_at_the_end_is_a_note_not_a_failed_run(tmp_path, monkeypatch):
    """The store answered before the run (the check is stubbed here) and fails when the run is logged."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("promptomatix.tracking.mlflow.probe", lambda uri: None)
    (tmp_path / "blocker").write_text("a file where the store's directory should be")
    r = run(tmp_path, track=f"mlflow:sqlite:///{tmp_path / 'blocker' / 'mlflow.db'}")
    assert r.version == 1 and SessionStore(tmp_path / "s").load(r.session_id).status == "completed"
    (note,) = [n for n in r.notes if n.startswith("tracking in mlflow failed")]
    assert "\n" not in note


#: a password with a `/` or `#` in it, or a URI without `http://`: URL parsers misplace the userinfo (it leaked)
ODD_URIS = ["http://bob:trackpw123@127.0.0.1:9/", "http://bob:track/pw123@127.0.0.1:9/",
            "http://bob:track#pw123@127.0.0.1:9/", "bob:trackpw123@127.0.0.1:9"]  # fmt: skip


@pytest.mark.parametrize("uri", ODD_URIS)
def test_a_store_that_does_not_answer_fails_before_the_run_without_the_password(tmp_path, monkeypatch, caplog, uri):
    """It was found after the run had been paid for, printed the password, and (MLflow's 7 retries) kept the
    finished run waiting 4 minutes. Port 9 on 127.0.0.1 refuses at once."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    clients, task, teacher = fakes()
    with pytest.raises(ConfigurationError) as e:
        run(tmp_path, clients=clients, track=f"mlflow:{uri}")
    msg = f"{e.value} {e.value.hint}"
    assert "127.0.0.1" in msg and "pw123" not in msg and "pw123" not in caplog.text and "leave out track" in msg
    assert task.n == teacher.n == 0  # nothing spent


@pytest.mark.parametrize("uri", ODD_URIS)
def test_a_tracking_failure_note_never_shows_the_password(tmp_path, monkeypatch, caplog, uri):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setattr("promptomatix.tracking.mlflow.probe", lambda uri: None)
    r = run(tmp_path, track=f"mlflow:{uri}")
    (note,) = [n for n in r.notes if n.startswith("tracking in mlflow failed")]
    assert "pw123" not in note and "pw123" not in caplog.text


def test_ctrl_c_while_a_finished_run_is_tracked_keeps_the_result(tmp_path, monkeypatch, uri):
    """Ctrl-C while MLflow retried said "interrupted", exit 130, with nothing shown, of a run saved as completed."""

    def slow_tracker(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("promptomatix.tracking.track_session", slow_tracker)
    r = run(tmp_path, track=f"mlflow:{uri}")
    assert r.version == 1 and SessionStore(tmp_path / "s").load(r.session_id).status == "completed"
    assert any(n.startswith("tracking in mlflow interrupted (Ctrl-C)") for n in r.notes)


def test_mlflow_http_retries_are_bounded_unless_the_user_set_them(monkeypatch):
    from promptomatix.tracking.mlflow import HTTP_DEFAULTS, import_mlflow

    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "7")
    import_mlflow()
    import os

    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"


def test_a_batch_jobs_tracking_failure_never_shows_the_password(tmp_path, caplog):
    from promptomatix.batch.runner import _track

    def tracker(store, sid, name):
        raise ConnectionError("API request to http://bob:trackpw123@127.0.0.1:9/api failed")

    row_error = _track(tracker, SessionStore(tmp_path / "s"), "sid", "j1", None)
    assert "127.0.0.1" in row_error and "trackpw123" not in row_error and "trackpw123" not in caplog.text


def test_a_wrong_tracker_fails_before_the_run(tmp_path):
    with pytest.raises(ConfigurationError, match="unknown tracker"):
        run(tmp_path, track="wandb")
    assert not (tmp_path / "s").exists() or not SessionStore(tmp_path / "s").list()


def test_optimize_and_refine_take_track(tmp_path, uri, monkeypatch):
    from promptomatix.cli.app import app
    from tests.batch_helpers import write_script

    monkeypatch.setenv("PROMPTOMATIX_FAKE_LM", str(write_script(tmp_path)))
    monkeypatch.setenv("PROMPTOMATIX_SESSIONS_DIR", str(tmp_path / "sessions"))
    data = tmp_path / "reviews.csv"
    data.write_text("review,label\n" + "".join(
        f"{'great wonderful' if i % 2 == 0 else 'awful boring'} film {i},{'positive' if i % 2 == 0 else 'negative'}\n"
        for i in range(24)
    ))  # fmt: skip
    cli = CliRunner()
    r = cli.invoke(app, ["optimize", "Classify the sentiment", "--data", str(data), "--track", f"mlflow:{uri}",
                         "--json", "-q"])  # fmt: skip
    assert r.exit_code == 0, r.output
    sid = json.loads(r.stdout)["session_id"]
    r = cli.invoke(app, ["refine", sid, "--track", f"mlflow:{uri}", "--json", "-q"])
    assert r.exit_code == 0, r.output
    client, _ = runs_of(uri)
    exp = client.get_experiment_by_name("promptomatix")
    logged = client.search_runs([exp.experiment_id])
    assert len(logged) == 2 and {x.data.tags["session_id"] for x in logged} == {sid}
