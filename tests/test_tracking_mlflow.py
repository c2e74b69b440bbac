"""`promptomatix batch --track mlflow:sqlite:///…` logs each job's run to a local MLflow store; read back: the params
(run config), metrics (final scores, per candidate, per round), artifacts (prompts, candidates, data), the registered
prompt version with the session id and scores as tags, and a failed job as a FAILED run. Run alone: `pytest -m mlflow`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from promptomatix.cli.app import app
from promptomatix.sessions import SessionStore
from tests.batch_helpers import write_jobs, write_script

mlflow = pytest.importorskip("mlflow")
pytestmark = pytest.mark.mlflow


def test_batch_jobs_are_logged_and_the_prompt_registered(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTOMATIX_FAKE_LM", str(write_script(tmp_path)))
    monkeypatch.setenv("PROMPTOMATIX_SESSIONS_DIR", str(tmp_path / "sessions"))
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is ./mlruns: never the repo root
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    jobs = write_jobs(tmp_path, "jobs:\n  - {name: sentiment, seed: 3}\n  - {name: broken, data: missing.csv}\n")
    r = CliRunner().invoke(app, ["batch", str(jobs), "--track", f"mlflow:{uri}", "--experiment", "exp", "--json", "-q"])
    out = json.loads(r.stdout)
    by = {j["name"]: j for j in out["jobs"]}
    assert r.exit_code == 1 and by["sentiment"]["status"] == "completed" and by["broken"]["status"] == "failed"
    assert "tracking failed" not in (by["sentiment"]["error"] or "")
    session = SessionStore(tmp_path / "sessions").load(by["sentiment"]["session_id"])
    version = session.latest_version()

    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.get_experiment_by_name("exp")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert set(runs) == {"sentiment", "broken"}
    run = runs["sentiment"]
    assert run.info.status == "FINISHED" and runs["broken"].info.status == "FAILED"
    assert run.data.params["seed"] == "3" and run.data.params["backend"] == "simple_meta_prompt"
    assert "api_key" not in run.data.params
    m = run.data.metrics
    assert m["optimized_test"] == pytest.approx(version.test.mean)
    assert m["initial_test"] == pytest.approx(version.initial_test.mean)
    assert m["calls"] == version.usage.calls
    history = client.get_metric_history(run.info.run_id, "candidate_valid_penalized")
    scored = [c for c in version.candidates if c.get("valid_penalized") is not None]
    assert len(history) == len(scored) > 0
    assert client.get_metric_history(run.info.run_id, "round_best_valid")
    # the run's own paired verdict, not a comparison of two means
    assert run.data.tags["session_id"] == session.session_id
    assert run.data.tags["verdict"] == version.verdict["outcome"]
    rid = run.info.run_id
    paths = {a.path for a in client.list_artifacts(rid, "prompts")} | {a.path for a in client.list_artifacts(rid)}
    paths |= {a.path for a in client.list_artifacts(rid, "examples")}
    assert {"prompts/optimized_prompt.txt", "prompts/initial_prompt.txt", "candidates.jsonl", "data",
            "verdict.json", "examples/test_examples.jsonl"} <= paths  # fmt: skip
    local = mlflow.artifacts.download_artifacts(
        run_id=rid, artifact_path="prompts/optimized_prompt.txt", tracking_uri=uri
    )
    assert Path(local).read_text() == version.prompt

    prompt_uri = run.data.tags["promptomatix.prompt"]
    registered = client.load_prompt(prompt_uri)
    assert registered.template == version.prompt
    assert registered.tags["session_id"] == session.session_id
    assert float(registered.tags["optimized_test"]) == pytest.approx(version.test.mean, abs=1e-4)
    assert registered.tags["mlflow_run_id"] == rid


def test_long_job_names_keep_their_matrix_suffix_in_the_registry_name():
    """Cutting at 60 characters dropped `-seed-N`: two jobs of one matrix registered as versions of one prompt."""
    from promptomatix.tracking.mlflow import prompt_name_for

    base = "classify-the-sentiment-of-customer-movie-reviews-for-the-support-team"
    names = [prompt_name_for(f"{base}[seed={s}]") for s in (0, 1)]
    assert names[0] != names[1] and all(len(n) <= 60 for n in names)
    assert names[0].endswith("-seed-0") and names[1].endswith("-seed-1") and names[0].startswith("classify-the-")
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*[A-Za-z0-9]", n) for n in names)
    assert prompt_name_for("sentiment[seed=0]") == "sentiment-seed-0"  # short names are unchanged
    assert prompt_name_for(base + "x" * 100) != prompt_name_for(base + "y" * 100)


def test_a_quiet_batch_with_tracking_prints_no_mlflow_info_lines(tmp_path):
    """`batch --track mlflow:sqlite:///… -q` printed "INFO mlflow.store.db.utils: Creating initial MLflow database
    tables...": MLflow sets its logger's level when it is imported (lazily, after the CLI had quieted it)."""
    import os
    import subprocess
    import sys

    jobs = write_jobs(tmp_path, "jobs:\n  - {name: sentiment, seed: 3}\n")
    env = {**os.environ, "PROMPTOMATIX_FAKE_LM": str(write_script(tmp_path)),
           "PROMPTOMATIX_SESSIONS_DIR": str(tmp_path / "sessions")}  # fmt: skip
    for name in ("PROMPTOMATIX_VERBOSE", "MLFLOW_LOGGING_LEVEL"):
        env.pop(name, None)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    r = subprocess.run(
        [sys.executable, "-m", "promptomatix", "batch", str(jobs), "--track", f"mlflow:{uri}", "-q"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "INFO" not in r.stderr and "Creating initial MLflow database tables" not in r.stderr
