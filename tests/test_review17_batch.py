# ruff: noqa: F811  (the env fixture, imported from test_batch_local, is taken by name)
"""Review 17, batch: a job whose api_base carries credentials is retried and re-run against its own full URL
(finding 1: the retry resumed from the session's stripped URL and was refused forever, or, with --api-key, ran
against the stripped URL), and a batch state file of the wrong shape is one line naming it and the fix (finding 7:
"unexpected error: AttributeError")."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from promptomatix import followup
from promptomatix.cli.app import main
from promptomatix.sessions import SessionStore
from tests.batch_helpers import SCRIPT, write_jobs, write_script
from tests.test_batch_local import batch, env  # noqa: F401  (env: a fixture its tests take by name)

runner = CliRunner()
KEY = "sk-review17-batchkey-abcdefgh"
URL = "http://user:PASSWORDXYZ@127.0.0.1:9/v1?code=FnCode4242&api-version=2"


@pytest.mark.parametrize("key", [None, KEY])
def test_a_credentialed_api_base_is_used_by_the_retry_and_the_rerun(env, monkeypatch, key):
    monkeypatch.setenv("PROMPTOMATIX_FAKE_LM", str(write_script(env, {**SCRIPT, "batch": {"transient_failures":
                                                                                            {"azure": 1}}})))  # fmt: skip
    called: list[str | None] = []  # the api_base of every resumed attempt's run
    real_env = followup._env
    monkeypatch.setattr(followup, "_env", lambda cfg, *a, **k: (called.append(cfg.api_base), real_env(cfg, *a, **k))[1])
    jobs = write_jobs(env, f'jobs:\n  - {{name: azure, api_base: "{URL}"}}\n')
    extra = ["--api-key", key] if key else []
    code, out = batch(str(jobs), *extra)  # attempt 1 fails (scripted, transient), the retry resumes it
    (job,) = out["jobs"]
    assert code == 0 and job["status"] == "completed" and job["attempts"] == 2, job
    assert called == [URL]
    code, out = batch(str(jobs), "--retries", "0", *extra)  # completed: skipped
    assert code == 0 and out["jobs"][0]["skipped"]
    files = {p: p.read_bytes() for p in (env / "sessions").rglob("*") if p.is_file()}
    for secret in ("PASSWORDXYZ", "FnCode4242", KEY):
        assert not [p for p, data in files.items() if secret.encode() in data], secret


def test_a_failed_credentialed_job_is_resumed_by_a_rerun(env, monkeypatch):
    """ "Running the same command again … resumes interrupted or failed ones": the re-run's resume used the stored
    (stripped) URL and was refused with a hint naming a flag `batch` does not have."""
    monkeypatch.setenv("PROMPTOMATIX_FAKE_LM", str(write_script(env, {**SCRIPT, "batch": {"transient_failures":
                                                                                            {"azure": 1}}})))  # fmt: skip
    jobs = write_jobs(env, f'jobs:\n  - {{name: azure, api_base: "{URL}"}}\n')
    code, out = batch(str(jobs), "--retries", "0")
    assert code == 1 and out["jobs"][0]["status"] == "failed"
    sid = out["jobs"][0]["session_id"]
    code, out = batch(str(jobs), "--retries", "1")  # attempt 1 fails again (scripted), attempt 2 resumes
    (job,) = out["jobs"]
    assert code == 0 and job["status"] == "completed" and job["session_id"] == sid, job
    assert "--api-base" not in json.dumps(out)


@pytest.mark.parametrize(
    "text, why",
    [
        ("[]", "not a JSON object"),
        ('{"sessions": [1, 2]}', "'sessions' is a list"),
        ('{"sessions": {"k": 5}}', "is not a string"),
        ("{not json", "does not load"),
    ],
)
def test_a_batch_state_of_the_wrong_shape_is_one_line_naming_it(env, capsys, text, why):
    jobs = write_jobs(env, "jobs:\n  - {name: one}\n")
    code, _ = batch(str(jobs))
    assert code == 0
    (state,) = (env / "sessions" / ".batches").glob("*.json")
    state.write_text(text)
    with pytest.raises(SystemExit) as e:
        main(["batch", str(jobs), "-q", "--json"])
    out = capsys.readouterr()
    lines = [x for x in out.err.splitlines() if x.strip()]
    assert e.value.code == 1 and out.out == "" and len(lines) == 1, out.err
    assert str(state) in lines[0] and why in lines[0] and "delete it to start the batch over" in lines[0]
    assert "unexpected error" not in lines[0]
    assert SessionStore(env / "sessions").list()  # nothing was deleted or overwritten
    assert state.read_text() == text
