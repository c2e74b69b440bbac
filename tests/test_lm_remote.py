"""The remote client's pure parts: credentials stripped from URLs and messages, and provider errors classified."""

from __future__ import annotations

import pytest

from promptomatix.errors import ModelUnavailableError
from promptomatix.lm.remote import ProviderError, RemoteClient, classify
from promptomatix.lm.urls import is_credential_param, redact_text, redact_url


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("http://user:pass@127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
        ("https://h.example/v1?api-key=abc&api-version=2024", "https://h.example/v1?api-version=2024"),
        ("https://h.example/v1?code=abc&sig=x&x-api-key=y&access_token=z&region=eu", "https://h.example/v1?region=eu"),
        ("https://h.example/openai?Signature=s&X-Amz-Credential=c&password=p", "https://h.example/openai"),
        ("https://h.example/v1#token=abc", "https://h.example/v1"),
        ("http://[::1]:9/v1", "http://[::1]:9/v1"),
        ("not a url", "not a url"),
    ],
)
def test_redact_url_strips_userinfo_and_credential_params(url, clean):
    assert redact_url(url) == clean


def test_names_that_only_look_like_credentials_are_kept():
    assert not is_credential_param("region") and not is_credential_param("api-version")
    assert not is_credential_param("model")
    assert is_credential_param("subscription-key") and is_credential_param("AUTH")


def test_redact_text_covers_urls_inside_messages_and_the_key():
    text = "failed at http://bob:pw@host:1/v1?token=T1 with key sk-abcdef123 (see http://docs/x)"
    out = redact_text(text, "sk-abcdef123")
    assert out == "failed at http://host:1/v1 with key [redacted] (see http://docs/x)"


def _named(name: str, message: str, **attrs):
    cls = type(name, (Exception,), {})
    e = cls(message)
    for k, v in attrs.items():
        setattr(e, k, v)
    return e


def test_classify_maps_each_kind_to_what_the_user_can_do():
    where = "http://127.0.0.1:9/v1"

    def c(e, key=None):
        return classify(e, model="openai/x", where=where, timeout=5, api_key=key)

    refused = _named("InternalServerError", "Connection error.", status_code=500)
    refused.__cause__ = ConnectionRefusedError(111, "Connection refused")
    assert str(c(refused)) == f"connection refused at {where} (is the server running?)"
    assert c(refused).retryable
    auth = c(_named("AuthenticationError", "Incorrect API key provided: sk-abcdef1234", status_code=401), "sk-abc")
    assert isinstance(auth, ModelUnavailableError) and "sk-" not in str(auth)
    missing = c(_named("InternalServerError", "Missing credentials. Please pass an `api_key`", status_code=500))
    assert str(missing) == "openai/x: no API key (set OPENAI_API_KEY or pass --api-key)"
    assert isinstance(c(_named("NotFoundError", "model not found", status_code=404)), ModelUnavailableError)
    limited = c(_named("RateLimitError", "slow down", status_code=429))
    assert isinstance(limited, ProviderError) and limited.retryable and limited.status == 429
    bad = c(_named("BadRequestError", "context length exceeded", status_code=400))
    assert isinstance(bad, ProviderError) and not bad.retryable
    timeout = c(_named("Timeout", "Request timed out."))
    assert str(timeout) == f"no answer from {where} (openai/x) within 5 s (is the server hung? if it is only slow, raise --request-timeout)"


def test_where_names_the_server_without_credentials_and_timeout_must_be_positive():
    client = RemoteClient("openai/x", api_base="http://u:secret@127.0.0.1:5/v1?key=k", api_key="sk-x", timeout=3)
    assert client.where == "http://127.0.0.1:5/v1"
    assert RemoteClient("anthropic/claude").where == "anthropic"
    with pytest.raises(ValueError):
        RemoteClient("openai/x", timeout=0)
