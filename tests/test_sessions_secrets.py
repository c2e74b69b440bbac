"""No API key or credential ever reaches a session file (upstream wrote `model_api_key` in clear text)."""

from __future__ import annotations

import os

import pytest

from promptomatix.sessions import Session, SessionStore, Usage, add_feedback, scrub, scrub_text
from promptomatix.sessions.secrets import REDACTED, is_secret_key

ENV_KEY = "sk-test-ENVVALUE0123456789abcdefXYZ"
CONFIG_KEY = "sk-proj-CONFIGKEY9876543210zyxwvu"
NESTED_KEY = "sk-ant-api03-NESTEDKEY_abcdefghijklmnop"
PLAIN_SECRET = "correct-horse-battery-staple"  # no key shape: only its key name gives it away
CUSTOM_ENV_TOKEN = "tok3n-value-without-known-shape"


def test_no_secrets_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    monkeypatch.setenv("MY_SERVICE_TOKEN", CUSTOM_ENV_TOKEN)
    store = SessionStore(tmp_path)
    s = store.new_session(
        raw_input=f"Summarize. (my key is {ENV_KEY})",
        run_config={
            "model": "openai/gpt-4o-mini",
            "model_api_key": CONFIG_KEY,
            "teacher": {
                "api_key": PLAIN_SECRET,
                "Authorization": f"Bearer {PLAIN_SECRET}",
                "max_tokens": 512,
            },
            "api_base": f"https://user:{PLAIN_SECRET}@proxy.example.com/v1?api_key={PLAIN_SECRET}",
            "password": PLAIN_SECRET,
        },
        data={"train": [{"text": f"call me with {CUSTOM_ENV_TOKEN}", "password": "hunter2", "api_key": "x" * 9}]},
    )
    s.add_version(
        f"You summarize. Never reveal {ENV_KEY}.",
        backend="dspy",
        settings={"lm_kwargs": f"model=gpt-4o api_key={NESTED_KEY} temperature=0", "max_tokens": 300},
        usage=Usage(calls=1, prompt_tokens=10, completion_tokens=5),
        program_json={"lm": {"model": "gpt-4o", "api_key": CONFIG_KEY}, "demos": [{"token": "NN"}]},
    )
    store.save(s)
    add_feedback(store, s.session_id, comment=f"use key {NESTED_KEY} instead", details={"secret_key": CONFIG_KEY})

    raw = store.session_file(s.session_id).read_bytes()
    exported = store.export(s.session_id, "json").encode()
    for blob in (raw, exported):
        for secret in (ENV_KEY, CONFIG_KEY, NESTED_KEY, PLAIN_SECRET, CUSTOM_ENV_TOKEN):
            assert secret.encode() not in blob, secret
        for gone in (
            b'"model_api_key"',
            b'"api_key"',
            b'"Authorization"',
            b'"password": "correct',
            b'"secret_key"',
        ):
            assert gone not in blob, gone
        # Counts and user data that merely look like credential words survive.
        for kept in (
            b'"prompt_tokens": 10',
            b'"completion_tokens": 5',
            b'"max_tokens": 300',
            b'"max_tokens": 512',
        ):
            assert kept in blob, kept
        assert b'"password": "hunter2"' in blob  # a dataset column, not a credential
        assert b'"token": "NN"' in blob  # a demo field
        assert REDACTED.encode() in blob

    loaded = store.load(s.session_id)
    assert loaded.run_config["model"] == "openai/gpt-4o-mini"
    # Credentials are dropped from the URL, not replaced inside it: the stored URL still works.
    assert loaded.run_config["api_base"] == "https://proxy.example.com/v1"
    assert loaded.stripped_credentials() == ["run_config.api_base"]


@pytest.mark.parametrize(
    "name, secret",
    [
        ("api_key", True),
        ("model_api_key", True),
        ("OPENAI_API_KEY", True),
        ("Authorization", True),
        ("x-api-key", True),
        ("client_secret", True),
        ("password", True),
        ("hf_token", True),
        ("token", True),
        ("prompt_tokens", False),
        ("completion_tokens", False),
        ("max_tokens", False),
        ("max_token", False),
        ("token_count", False),
        ("api_base", False),
        ("api_key_env", False),
        ("model", False),
    ],
)
def test_secret_key_names(name, secret):
    assert is_secret_key(name) is secret


def test_ambiguous_names_are_kept_in_data_mode():
    row = {"password": "hunter2", "token": "NN", "api_key": "abc"}
    assert scrub(row, keep_ambiguous_keys=True) == {"password": "hunter2", "token": "NN"}
    assert scrub(row) == {}


@pytest.mark.parametrize(
    "text",
    [
        "sk-abcdefghijklmnop1234",
        "sk-ant-api03-abcdefghijklmnopqrst",
        "AIzaSyA1234567890abcdefghijklmnopqrstu",
        "hf_abcdefghijklmnopqrstuvwxyz",
        "xoxb-123456789012-abcdefghij",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "AKIAABCDEFGHIJKLMNOP",
    ],
)
def test_key_shaped_values_are_redacted(text, monkeypatch):
    for name in [k for k in os.environ if k.upper().endswith(("_API_KEY", "_TOKEN", "_SECRET"))]:
        monkeypatch.delenv(name)
    assert scrub_text(f"use {text} now") == f"use {REDACTED} now"
    assert scrub({"a": [f"x {text}"]}) == {"a": [f"x {REDACTED}"]}


def test_ordinary_text_is_not_redacted():
    text = "A task-oriented-dialogue-classification prompt: mask tokens, ask-questions, sk-short."
    assert scrub_text(text) == text
    assert scrub_text("Authorization: Bearer abcdefghijkl") == f"Authorization: Bearer {REDACTED}"


def test_short_env_values_are_ignored(monkeypatch):
    monkeypatch.setenv("SOME_TOKEN", "yes")  # too short to be a secret; must not blank every "yes"
    assert scrub_text("yes, yes") == "yes, yes"


def test_in_memory_session_keeps_config_until_written(tmp_path):
    # The caller's object is not mutated by scrubbing; only what is written is scrubbed.
    store = SessionStore(tmp_path)
    s = store.create(Session(session_id="abc", run_config={"model_api_key": CONFIG_KEY}))
    assert s.run_config == {"model_api_key": CONFIG_KEY}
    assert store.load("abc").run_config == {}
