"""Credentials out of what the LM layer says: provider error messages and the server names in them.

There is one rule for what a credential is and how a URL loses it: `sessions.urls` (userinfo and credential query
parameters are dropped, not masked, so the URL still names the server). This module adds what messages need on top
of it: a known secret value (the API key) replaced wherever it appears.
"""

from __future__ import annotations

from promptomatix.sessions.urls import is_credential_param, strip_url_credentials, strip_urls_in_text

__all__ = ["is_credential_param", "redact_text", "redact_url"]


def redact_url(url: str) -> str:
    """`http://u:p@host:8/v1?api-key=x&v=2` → `http://host:8/v1?v=2`."""
    return strip_url_credentials(url)


def redact_text(text: str, *secrets: str | None) -> str:
    """Strip credentials from every URL inside free text (a provider's error message) and any given secret value."""
    out = strip_urls_in_text(text)
    for s in secrets:
        if s and len(s) >= 4:
            out = out.replace(s, "[redacted]")
    return out
