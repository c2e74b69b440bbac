"""Values of the keyed-user path refused before a session or a call (review 22, F10 and F11): a server URL given as
the model (the hint said only "write provider/model"), a provider with no model name (`openai/` sent `"model": ""`),
and an `--api-base` without its scheme (36 retries, 32 s, then "could not connect")."""

from __future__ import annotations

import pytest

from promptomatix.cli.app import main

TASK = "Classify the sentiment of a movie review as positive or negative"


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--model", "http://127.0.0.1:9/v1"], "is a URL, not a model name (pass the server as --api-base URL"),
        (["--model", "openai/"], "names no model after openai/ (write openai/NAME"),
        (["--model", "openai/x", "--api-base", "127.0.0.1:9/v1"], "has no scheme; write it as http://127.0.0.1:9/v1"),
    ],
)
def test_a_wrong_model_or_server_value_is_exit_2_before_a_session(tmp_path, monkeypatch, capsys, flags, says):
    monkeypatch.setenv("PROMPTOMATIX_SESSIONS_DIR", str(tmp_path / "s"))
    with pytest.raises(SystemExit) as e:
        main(["optimize", TASK, *flags, "--dry-run"])
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert says in err
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())


def test_a_budget_spent_on_failing_calls_names_the_failure_not_the_budget(tmp_path, monkeypatch, capsys):
    """Review 22, F7: 20 calls answered HTTP 500, then "no search fits the budget … use --max-calls 55": raising
    the budget would only pay for more failures. The provider's error leads the line."""
    from promptomatix.testing.fault_server import FaultServer

    rows = [f"{'great' if i % 2 else 'awful'} film number {i},{'positive' if i % 2 else 'negative'}" for i in range(24)]
    (tmp_path / "reviews.csv").write_text("\n".join(["text,label", *rows]) + "\n")
    monkeypatch.setenv("PROMPTOMATIX_SESSIONS_DIR", str(tmp_path / "s"))
    with FaultServer("500", retry_after=0.05) as server:
        with pytest.raises(SystemExit) as e:
            main(["optimize", TASK, "--data", str(tmp_path / "reviews.csv"), "--model", "openai/fault", "--api-base",
                  server.base_url, "--api-key", "sk-x", "--max-calls", "40", "--quiet"])  # fmt: skip
        sent = server.requests
    last = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Error:")][-1]
    assert e.value.code == 1 and sent <= 40
    assert last.startswith("Error: the teacher model's calls failed (") and "HTTP 500 from" in last, last
    assert "--max-calls" not in last


def test_a_time_budget_spent_waiting_on_a_hung_server_says_to_check_the_server(tmp_path, monkeypatch, capsys):
    """Review 22, F3: the line ended "(raise --max-minutes)": more time is no fix for a server that never answers."""
    from promptomatix.testing.fault_server import FaultServer

    rows = [f"{'great' if i % 2 else 'awful'} film number {i},{'positive' if i % 2 else 'negative'}" for i in range(24)]
    (tmp_path / "r.csv").write_text("\n".join(["text,label", *rows]) + "\n")
    monkeypatch.setenv("PROMPTOMATIX_SESSIONS_DIR", str(tmp_path / "s"))
    with FaultServer("hang", delay=60) as server, pytest.raises(SystemExit) as e:
        main(["optimize", TASK, "--data", str(tmp_path / "r.csv"), "--input-fields", "text", "--output-fields",
              "label", "--synthetic-data-size", "0", "--model", "openai/x", "--api-base", server.base_url,
              "--api-key", "sk-x", "--max-minutes", "0.1", "--quiet"])  # fmt: skip
    last = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Error:")][-1]
    assert e.value.code == 1 and last.endswith("is answering)"), last
    assert "raise" not in last


def test_a_key_in_the_api_base_path_is_never_written_even_before_a_client_exists(tmp_path):
    """Review 22, F4 (what its fixer left): the key was remembered for scrubbing when the HTTP client was built,
    after the session's first write; with clients given (no HTTP client at all) it stayed in session.json."""
    from promptomatix import process_input
    from promptomatix.sessions.secrets import forget_secrets
    from tests.test_pipeline import GIVEN, fakes

    key = "PathSegmentToken7f3e2d1c"  # no sk- prefix: only a remembered key is scrubbed
    forget_secrets()
    r = process_input(human_input=TASK, sessions_dir=str(tmp_path / "s"), clients=fakes()[0], model="openai/x",
                      api_key=key, api_base=f"http://127.0.0.1:9/{key}/v1", **GIVEN)  # fmt: skip
    written = [p.read_text() for p in (tmp_path / "s").rglob("*.json")]
    assert r.session_id and written and not any(key in text for text in written)
