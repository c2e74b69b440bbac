"""Credentials in URLs are dropped (not masked) everywhere a session is written, printed or exported.

Before: `?code=…`/`?x-api-key=…` were stored in clear, and `user:pass@` became `[redacted]@` *inside* the
stored api_base, so `refine`/`resume` later called `http://[redacted]@host` and failed.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest
from typer.testing import CliRunner

from promptomatix.cli.app import app
from promptomatix.sessions import Score, Session, SessionStore
from promptomatix.sessions.secrets import is_credential_param, scrub, scrub_text, strip_url_credentials

BASE = "http://127.0.0.1:8080/openai/v1"
KEEP = "api-version=2024-06-01&deployment=small"
# (the URL as the user passed it, the secret that must never appear anywhere)
SHAPES = [
    (f"http://alice:Pw0rdAlice77@127.0.0.1:8080/openai/v1?{KEEP}", "Pw0rdAlice77"),
    (f"http://tok9userinfo42@127.0.0.1:8080/openai/v1?{KEEP}", "tok9userinfo42"),
    (f"{BASE}?code=AzFuncCode42xyz&{KEEP}", "AzFuncCode42xyz"),
    (f"{BASE}?{KEEP}&x-api-key=XHeaderKey42", "XHeaderKey42"),
    (f"{BASE}?api_key=UnderscoreKey42&{KEEP}", "UnderscoreKey42"),
    (f"{BASE}?apiKey=CamelKey4242&{KEEP}", "CamelKey4242"),
    (f"{BASE}?{KEEP}&Token=UpperTok4242", "UpperTok4242"),
    (f"{BASE}?access_token=AccTok4242&{KEEP}", "AccTok4242"),
    (f"{BASE}?{KEEP}&sig=SasSig42%2Fabc&se=2030", "SasSig42"),
    (f"{BASE}?X-Amz-Signature=AmzSig4242&X-Amz-Credential=AKCred42&{KEEP}", "AmzSig4242"),
    (f"{BASE}?password=PlainPw4242&{KEEP}", "PlainPw4242"),
    (f"{BASE}?{KEEP};session=SessVal4242", "SessVal4242"),
    (f"{BASE}?auth=AuthVal4242&{KEEP}", "AuthVal4242"),
    (f"{BASE}?secret=SecretVal42&{KEEP}#access_token=FragTok4242", "FragTok4242"),
]


@pytest.mark.parametrize("url, secret", SHAPES)
def test_strip_keeps_a_working_url(url, secret):
    out = strip_url_credentials(url)
    assert secret not in out and "[redacted]" not in out and "@" not in out
    parts = urlsplit(out)
    assert (parts.scheme, parts.hostname, parts.port, parts.path) == ("http", "127.0.0.1", 8080, "/openai/v1")
    params = dict(parse_qsl(parts.query))
    assert params["api-version"] == "2024-06-01" and params["deployment"] == "small"
    assert strip_url_credentials(out) == out  # idempotent


@pytest.mark.parametrize(
    "name, credential",
    [
        ("key", True),
        ("X-API-KEY", True),
        ("subscription-key", True),
        ("sessionId", True),
        ("code", True),
        ("Signature", True),
        ("pwd", True),
        ("api-version", False),
        ("keyword", False),
        ("author", False),
        ("authuser", False),
        ("country_code", False),
        ("model", False),
        ("se", False),
    ],
)
def test_credential_param_names(name, credential):
    assert is_credential_param(name) is credential


def test_urls_without_credentials_are_unchanged():
    for url in (BASE, f"{BASE}?{KEEP}", "https://api.openai.com/v1/", "http://[::1]:9/v1?x=1#frag"):
        assert strip_url_credentials(url) == url


def test_old_masked_userinfo_is_dropped():
    assert strip_url_credentials("http://[redacted]@host:8/v1?api_key=[redacted]&a=1") == "http://host:8/v1?a=1"


def test_free_text_and_log_messages():
    text = (
        "POST http://bob:Hunter2Pw@host/v1?code=FnCode99&v=1. retried GET /v1/x?token=BareTok99&n=2 "
        "with header x-api-key: HdrKey9999"
    )
    out = scrub_text(text)
    for secret in ("Hunter2Pw", "FnCode99", "BareTok99", "HdrKey9999"):
        assert secret not in out
    assert "http://host/v1?v=1." in out and "&n=2" in out  # the sentence and other params survive


def test_scrub_strips_url_values_wholesale():
    assert scrub({"api_base": SHAPES[2][0]}) == {"api_base": f"{BASE}?{KEEP}"}


def _session_with(store: SessionStore, url: str) -> Session:
    s = store.new_session(
        raw_input=f"Classify reviews (server {url})",
        description="reviews",
        run_config={"model": "openai/small", "api_base": url, "backend": "dspy"},
        status="interrupted",
    )
    s.add_event("interrupted", message=f"stopped while calling {url}")
    s.add_version(
        "Classify the review.",
        backend="dspy",
        valid=Score(raw=0.5, penalized=0.5),
        settings={"lm": {"api_base": url}},
        program_json={"predict": {"lm": {"model": "openai/small", "api_base": url}, "demos": []}},
    )
    store.save(s)
    return s


@pytest.mark.parametrize("url, secret", SHAPES)
def test_no_secret_in_session_file_exports_or_show(tmp_path, url, secret):
    store = SessionStore(tmp_path / "sessions")
    sid = _session_with(store, url).session_id
    runner = CliRunner()
    d = ["--sessions-dir", str(store.root)]
    outputs = {"session.json": store.session_file(sid).read_text()}
    for fmt in ("json", "text", "dspy"):
        r = runner.invoke(app, ["sessions", "export", sid, "--format", fmt, *d])
        assert r.exit_code == 0, r.output
        outputs[f"export {fmt}"] = r.output
    for args in (["sessions", "show", sid], ["sessions", "show", sid, "--json"], ["sessions", "list"]):
        r = runner.invoke(app, [*args, *d])
        assert r.exit_code == 0, r.output
        outputs[" ".join(args[:2] + args[3:])] = r.output
    for where, text in outputs.items():
        assert secret not in text, where
    loaded = store.load(sid)
    stored = loaded.run_config["api_base"]
    assert stored == strip_url_credentials(url) and urlsplit(stored).hostname == "127.0.0.1"
    assert loaded.stripped_credentials() == ["run_config.api_base"]
    assert "pass --api-base" in outputs["sessions show"]  # says the credentials must be given again
    assert json.loads(outputs["export json"])["run_config"]["api_base"] == stored


def test_credential_note_is_recorded_once_and_not_for_clean_urls(tmp_path):
    store = SessionStore(tmp_path)
    s = store.new_session(run_config={"api_base": SHAPES[2][0]})
    for _ in range(3):
        store.update(s.session_id, lambda x: x.add_event("tick"))
    events = [e for e in store.load(s.session_id).events if e["kind"] == "credentials_stripped"]
    assert events == [{**events[0], "fields": ["run_config.api_base"]}]
    clean = store.new_session(run_config={"api_base": BASE})
    assert store.load(clean.session_id).stripped_credentials() == []


def test_credential_note_survives_event_trimming(tmp_path):
    store = SessionStore(tmp_path)
    s = store.new_session(run_config={"api_base": SHAPES[0][0]})
    loaded = store.load(s.session_id)
    for i in range(300):
        loaded.add_event("tick", i=i)
    assert loaded.stripped_credentials() == ["run_config.api_base"]


def test_old_session_files_are_repaired_on_load(tmp_path):
    """A session written before this fix: masked userinfo and a clear-text `?code=` in run_config."""
    store = SessionStore(tmp_path)
    s = store.new_session(run_config={"model": "openai/x"})
    path = store.session_file(s.session_id)
    doc = json.loads(path.read_text())
    doc["run_config"]["api_base"] = "http://[redacted]@127.0.0.1:9/v1?code=OldClearCode1&v=2"
    path.write_text(json.dumps(doc))
    loaded = store.load(s.session_id)
    assert loaded.run_config["api_base"] == "http://127.0.0.1:9/v1?v=2"
    assert loaded.stripped_credentials() == ["run_config.api_base"]
    r = CliRunner().invoke(app, ["sessions", "show", s.session_id, "--json", "--sessions-dir", str(tmp_path)])
    assert "OldClearCode1" not in r.output and "[redacted]@" not in r.output
