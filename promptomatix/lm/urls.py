"""Credentials out of what the LM layer says: provider error messages and the server names in them.

There is one rule for what a credential is and how a URL loses it: `sessions.urls` (userinfo and credential query
parameters are dropped, not masked, so the URL still names the server). This module adds what messages need on top
of it: a known secret value (the API key) replaced wherever it appears.
"""

from __future__ import annotations

from promptomatix.sessions.urls import is_credential_param, strip_url_credentials, strip_urls_in_text

__all__ = ["is_credential_param", "redact_text", "redact_url", "split_query"]


def redact_url(url: str, *secrets: str | None) -> str:
    """`http://u:p@host:8/v1?api-key=x&v=2` → `http://host:8/v1?v=2`; a key given as a path segment (Azure-style
    `/k/<KEY>/v1`) is replaced by [redacted] too."""
    return redact_text(strip_url_credentials(url), *secrets)


def redact_text(text: str, *secrets: str | None) -> str:
    """Strip credentials from every URL inside free text (a provider's error message), any given secret value, and
    what the one scrubber (`sessions.secrets.scrub_text`) removes: remembered keys, credential env-var values
    (OPENAI_API_KEY... which litellm reads when no --api-key is given) and key-shaped strings."""
    from promptomatix.sessions.secrets import scrub_text

    out = strip_urls_in_text(text)
    for s in secrets:
        if s and len(s) >= 4:
            out = out.replace(s, "[redacted]")
    return scrub_text(out)


def split_query(url: str) -> tuple[str, dict[str, str]]:
    """`http://h/v1?api-key=K&v=2` → (`http://h/v1`, {"api-key": "K", "v": "2"}). The OpenAI SDK appends the
    endpoint to the whole URL, query included (`/v1/?api-key=Kchat/completions`), so a query is sent apart."""
    from urllib.parse import parse_qsl, urlsplit, urlunsplit

    parts = urlsplit(url)
    if not parts.query:
        return url, {}
    return urlunsplit(parts._replace(query="", fragment="")), dict(parse_qsl(parts.query, keep_blank_values=True))
