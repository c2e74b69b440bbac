"""Each provider fault, end to end through the CLI over real HTTP (the packaged fault server on 127.0.0.1): the exit
code, the one-line message naming the cause, the session's state, and no key in any output or file."""

from __future__ import annotations

import json
import time

import pytest

from promptomatix.cli.app import main
from promptomatix.testing.fault_server import FaultServer

KEY = "sk-fault-test-9f8e7d"
TASK = "Classify the sentiment of a movie review as positive or negative"


@pytest.fixture
def data_csv(tmp_path):
    lines = ["text,label"] + [
        f"{'great' if i % 2 else 'awful'} film number {i},{'positive' if i % 2 else 'negative'}" for i in range(12)
    ]
    path = tmp_path / "reviews.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def run_cli(capsys, tmp_path, data_csv, api_base: str, *extra: str) -> tuple[int, str, float]:
    args = ["optimize", TASK, "--model", "openai/fault", "--api-base", api_base, "--api-key", KEY,
            "--data", data_csv, "--input-fields", "text", "--output-fields", "label",
            "--synthetic-data-size", "0", "--max-calls", "40", "--quiet", "--sessions-dir", str(tmp_path / "s"),
            *extra]  # fmt: skip
    start = time.monotonic()
    try:
        main(args)
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.err + out.out, time.monotonic() - start


def session_files(tmp_path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (tmp_path / "s").rglob("session.json")]


@pytest.mark.parametrize(
    ("mode", "words", "extra"),
    [
        ("500", "HTTP 500 from", ()),
        ("429", "429", ()),
        ("401", "HTTP 401 from", ()),
        ("malformed", "unreadable response from", ()),
        ("hang", "within 1 s", ("--request-timeout", "1")),
        ("garbage", "never gave a readable answer", ()),
    ],
)
def test_a_provider_fault_fails_the_run_with_its_cause(capsys, tmp_path, data_csv, mode, words, extra):
    with FaultServer(mode, delay=30.0, retry_after=0.1) as server:
        code, text, seconds = run_cli(capsys, tmp_path, data_csv, server.base_url, *extra)
        requests = server.requests
    errors = [line for line in text.splitlines() if line.startswith("Error:")]
    assert code == 1, text[-1500:]
    assert errors and words in errors[-1], text[-1500:]
    assert requests <= 40  # --max-calls counts every HTTP attempt
    if mode == "401":
        assert requests == 1  # a rejected key is not retried, and later calls send nothing
    if mode == "hang":
        assert seconds < 150  # each request is bounded by --request-timeout
    (session,) = session_files(tmp_path)
    assert session["status"] == "failed" and not session["versions"]
    assert KEY not in text and KEY not in json.dumps(session)


def test_connection_refused_names_the_address_and_the_fix(capsys, tmp_path, data_csv):
    code, text, _ = run_cli(capsys, tmp_path, data_csv, "http://127.0.0.1:9/v1")
    assert code == 1
    assert "connection refused at http://127.0.0.1:9/v1 (is the server running?)" in text
    (session,) = session_files(tmp_path)
    assert session["status"] == "failed"


def test_a_good_server_completes_and_stores_no_credential_from_the_url(capsys, tmp_path, data_csv):
    with FaultServer("ok", answer=json.dumps({"label": "positive"})) as server:
        url = server.base_url.replace("http://", "http://user:pw-0xSECRET@") + "?code=0xSECRET&api-version=2"
        code, text, _ = run_cli(capsys, tmp_path, data_csv, url)
    assert code == 0, text[-1500:]
    (session,) = session_files(tmp_path)
    stored = json.dumps(session)
    assert session["status"] == "completed" and "0xSECRET" not in stored and "0xSECRET" not in text
    assert session["run_config"]["api_base"].endswith("/v1?api-version=2")
