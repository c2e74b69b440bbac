"""Review 17: credentials in an `--api-base` never reach a file, an export or an error line, in the shapes the review
found kept: a scheme-less URL's userinfo (finding 2: `user:pass@host:9/v1` was stored whole in session.json, every
export and MLflow's params) and credential-like query parameters (`?pw=`, `?hmac=`...). And `refine`/`resume` given
`--api-key` but no `--api-base` on a session whose URL lost its credentials refuse, naming --api-base (they ran
against the stripped URL: a key does not replace the URL's own credential)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptomatix.sessions import SessionStore
from promptomatix.sessions.secrets import is_credential_param, scrub, strip_url_credentials
from tests.cli_run import run_main as run
from tests.review_rows import write_reviews_csv

TASK = "Classify the sentiment of a movie review"
SCRIPT = {
    "task": {"rules": [[["complains", "awful"], {"label": "negative"}]], "default": {"label": "positive"}},
    "teacher": {"rules": [['{"prompt"', {"prompt": "Say negative if the review complains."}]], "default": {}},
}
KEY = "sk-review17-abcdefghijklmnop"


@pytest.fixture
def env(tmp_path, monkeypatch):
    script = tmp_path / "fake.json"
    script.write_text(json.dumps(SCRIPT))
    monkeypatch.setenv("PROMPTOMATIX_FAKE_LM", str(script))
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is ./mlruns
    return write_reviews_csv(tmp_path / "reviews.csv")




def written(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def assert_absent(secret: str, texts: dict[str, str | bytes]) -> None:
    for where, text in texts.items():
        data = text if isinstance(text, bytes) else text.encode()
        assert secret.encode() not in data, where


def test_a_schemeless_api_base_is_refused_without_echoing_its_password(env, tmp_path, capsys):
    """A server URL without its scheme reached no server (every call failed, retried for 32 s): it is refused up
    front, exit 2, no session, and the refusal does not print the userinfo it carried (review 22, F10). Sessions
    saved before keep being scrubbed (`scrub` below)."""
    code, out, err = run(capsys, "optimize", TASK, "--data", str(env), "--model", "openai/gpt-4o-mini",
                         "--api-base", "user:PASSWORDXYZ@127.0.0.1:9/v1", "--json", "-q")  # fmt: skip
    assert code == 2 and out == "" and "has no scheme; write it as http://127.0.0.1:9/v1" in err, err
    assert_absent("PASSWORDXYZ", {"stderr": err})
    assert not SessionStore().root.exists() or not list(SessionStore().root.iterdir())
    from promptomatix import process_input
    from promptomatix.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as e:
        process_input(raw_input=TASK, model="openai/x", api_base="user:PASSWORDXYZ@127.0.0.1:9/v1", dry_run=True)
    assert "PASSWORDXYZ" not in str(e.value)


def test_scheme_less_values_are_read_as_urls_only_for_url_settings():
    cfg = {"api_base": "u:pw@h:8/v1?code=C0de42&v=2", "raw_input": "mail me: a:b@example.com", "model": "x"}
    assert scrub(cfg) == {"api_base": "h:8/v1?v=2", "raw_input": "mail me: a:b@example.com", "model": "x"}
    row = {"url": "support@example.com"}  # user data keeps its text
    assert scrub(row, keep_ambiguous_keys=True) == row
    # ... also where a session keeps rows outside its data block (sample rows, per-row test results): a phishing
    # classifier's `url` field lost "paypal.com@" there, while its label still said phishing
    phishing = {"sample_rows": [{"url": "paypal.com@evil.ru/login", "label": "phishing"}]}
    assert scrub(phishing) == phishing


@pytest.mark.parametrize("name", ["pw", "PW", "hmac", "key", "api_key", "token", "sig", "passcode", "sastoken",
                                  "accessKey", "userPassword"])  # fmt: skip
def test_credential_like_query_names(name):
    assert is_credential_param(name)
    url = f"http://127.0.0.1:9/v1?{name}=QSECRET4242&api-version=2"
    assert strip_url_credentials(url) == "http://127.0.0.1:9/v1?api-version=2"


@pytest.mark.parametrize("name", ["api-version", "deployment", "model", "keyword", "author", "se", "country_code"])
def test_ordinary_query_names_are_kept(name):
    assert not is_credential_param(name)


def test_query_credentials_are_not_stored_nor_in_the_error_line(tmp_path, monkeypatch, capsys):
    """A server that is down: the error line names it (with its other parameters) and nothing else."""
    monkeypatch.delenv("PROMPTOMATIX_FAKE_LM", raising=False)
    data = write_reviews_csv(tmp_path / "reviews.csv")
    url = "http://127.0.0.1:9/v1?pw=QPWSECRET42&hmac=HMACSECRET42&api-version=2"
    code, out, err = run(capsys, "optimize", TASK, "--data", str(data), "--model", "openai/gpt-4o-mini",
                         "--api-key", KEY, "--api-base", url, "--json")  # fmt: skip
    assert code == 1 and out == ""
    assert "Error: connection refused at http://127.0.0.1:9/v1?api-version=2" in err.splitlines()[-1]
    for secret in ("QPWSECRET42", "HMACSECRET42", KEY):
        assert_absent(secret, {"stderr": err, **written(SessionStore().root)})


URLS = ["http://u:PwUser42@127.0.0.1:9/v1", "http://127.0.0.1:9/v1?code=FnCode42"]  # scheme-less: refused (F10)


@pytest.mark.parametrize("url", URLS)
def test_refine_and_resume_with_only_a_key_refuse_naming_api_base(env, capsys, monkeypatch, url):
    from promptomatix import followup

    common = ["--model", "openai/gpt-4o-mini", "--api-base", url, "--json", "-q"]
    code, out, err = run(capsys, "optimize", TASK, "--data", str(env), *common)
    assert code == 0, err
    done = json.loads(out)["session_id"]
    code, out, err = run(capsys, "optimize", TASK, "--data", str(env), *common, "--dry-run")
    assert code == 0, err
    dry = json.loads(out)["session_id"]  # resumable: the dry run stopped before the search
    store = SessionStore()
    for command, sid in (("refine", done), ("resume", dry)):
        before = store.session_file(sid).read_bytes()
        code, out, err = run(capsys, command, sid, "--api-key", KEY, "--json", "-q")
        lines = [x for x in err.splitlines() if x.strip()]
        assert code == 1 and out == "" and len(lines) == 1, err
        assert "api_base had credentials that were not saved" in lines[0] and "--api-base" in lines[0]
        assert store.session_file(sid).read_bytes() == before  # refused before it touched the session
    seen: list[str | None] = []
    real_env = followup._env
    monkeypatch.setattr(followup, "_env", lambda cfg, *a, **k: (seen.append(cfg.api_base), real_env(cfg, *a, **k))[1])
    code, _, err = run(capsys, "resume", dry, "--api-key", KEY, "--api-base", url, "--json", "-q")
    assert code == 0, err
    assert seen == [url]  # the run calls the full URL given again
    assert_absent("PwUser42", written(store.root))
    assert_absent("FnCode42", written(store.root))
    assert_absent(KEY, written(store.root))
