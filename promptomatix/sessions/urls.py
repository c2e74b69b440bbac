"""Credentials in URLs: strip them so a stored URL keeps working, and find them inside free text.

An `--api-base` may carry credentials in two places: userinfo (``https://user:pass@host``) and the query
(``?code=…`` for Azure Functions, ``?x-api-key=…``, ``?sig=…`` for SAS URLs, ``#access_token=…``). Replacing
the secret with a placeholder *inside* the URL broke `refine`/`resume` (they called
``http://[redacted]@host``), so here the credential parts are dropped entirely: what remains is a valid URL
to the same host and path, with every other parameter (``api-version=…``) intact, and the user supplies the
credentials again (`--api-base`, `--api-key`).

The URL is split by hand rather than with `urllib.parse`, which rejects some inputs we must still clean
(``http://[redacted]@host`` fails its IPv6 check) and misreads scheme-less ``host:8000/v1?key=…``.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

# A parameter is a credential when its whole (normalized) name is one of these...
_CREDENTIAL_NAMES = frozenset(
    {"code", "auth_code", "authorization_code", "sid", "pass", "x_api_key", "api_key", "apikey", "access_key"}
)
# ...or when any word of its name is one of these (``x-api-key`` → x, api, key; ``sessionId`` → session, id).
_CREDENTIAL_WORDS = frozenset(
    {
        "key",
        "apikey",
        "token",
        "secret",
        "sig",
        "signature",
        "auth",
        "authorization",
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "session",
        "sessionid",
        "credential",
        "credentials",
        "jwt",
        "bearer",
        "cookie",
        "otp",
        "accesstoken",
        "pw",
        "hmac",
        "passcode",
    }
)
# ...or when a word of its name ends with one of these (``sastoken``, ``accesskey``, ``userpassword``).
_CREDENTIAL_ENDINGS = ("key", "token", "secret", "password", "passwd", "signature")

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
_URL_PARTS = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)?(?P<authority>[^/?#]*)(?P<path>[^?#]*)"
    r"(?:\?(?P<query>[^#]*))?(?:#(?P<fragment>.*))?$",
    re.DOTALL,
)
# A URL inside free text: scheme://, then anything up to whitespace or a quote (not a closing '.', ')'...).
URL_IN_TEXT = re.compile(r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>`]*[^\s\"'<>`.,;:!?)\]]")
_WHOLE_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S*")
# A bare query parameter in free text (``GET /v1?code=abc``), outside any scheme://… URL.
_PARAM_IN_TEXT = re.compile(r"(?P<lead>[?&;])(?P<name>[A-Za-z0-9_.%\-]+)=(?P<value>[^&;#\s\"'<>`]*)")
# ``x-api-key: abc`` / ``api_key=abc`` as in a logged header or setting.
_KEY_ASSIGN_IN_TEXT = re.compile(
    r"(?i)(?<![A-Za-z0-9])((?:x[-_])?api[-_]?key|access[-_]token|client[-_]secret)([\"']?\s*[:=]\s*[\"']?)"
    r"(?!\[redacted\])[^\s\"'&,;]{4,}"
)


def is_credential_param(name: str) -> bool:
    """True if a URL parameter name suggests a credential (case-insensitive; ``x-api-key``, ``sessionId``...)."""
    plain = _CAMEL.sub("_", unquote(name).strip())
    lowered = plain.lower()
    normalized = "_".join(w for w in _WORD_SPLIT.split(lowered) if w)
    if normalized in _CREDENTIAL_NAMES or normalized.replace("_", "") in _CREDENTIAL_WORDS:
        return True
    return any(word in _CREDENTIAL_WORDS or word.endswith(_CREDENTIAL_ENDINGS) for word in normalized.split("_"))


def _filter_params(query: str) -> tuple[str, bool]:
    """Drop credential parameters from `a=1&key=2;b=3`; keep the others and their separators' style."""
    if not query:
        return query, False
    kept: list[str] = []
    dropped = False
    for part in re.split(r"[&;]", query):
        name = part.split("=", 1)[0]
        if name and is_credential_param(name):
            dropped = True
            continue
        if part:
            kept.append(part)
    return "&".join(kept), dropped


def _split(url: str) -> dict[str, str | None] | None:
    match = _URL_PARTS.match(url)
    return match.groupdict() if match else None


def url_has_credentials(url: str) -> bool:
    """True if `url` carries userinfo or a credential-named query/fragment parameter."""
    return strip_url_credentials(url) != url


def strip_url_credentials(url: str) -> str:
    """`url` without userinfo and without credential query/fragment parameters; otherwise unchanged.

    ``https://u:p@h.example/v1?api-version=2&code=S`` → ``https://h.example/v1?api-version=2``.
    The result is still a usable URL; pass the credentials again with `--api-base`/`--api-key`.
    """
    if not isinstance(url, str) or not url:
        return url
    parts = _split(url)
    if parts is None:
        return url
    scheme = parts["scheme"] or ""
    authority = parts["authority"] or ""
    if "@" in authority:
        authority = authority.rpartition("@")[2]
    query, fragment = parts["query"], parts["fragment"]
    out = scheme + authority + (parts["path"] or "")
    if query is not None:
        query, _ = _filter_params(query)
        out += f"?{query}" if query else ""
    if fragment is not None:
        if "=" in fragment:
            fragment, _ = _filter_params(fragment)
        out += f"#{fragment}" if fragment else ""
    return out


def _redact_bare_param(match: re.Match[str]) -> str:
    if is_credential_param(match["name"]) and match["value"] and match["value"] != "[redacted]":
        return f"{match['lead']}{match['name']}=[redacted]"
    return match.group(0)


def strip_urls_in_text(text: str) -> str:
    """Strip credentials from every URL inside `text`, and redact stray ``?token=…``/``api-key: …`` values."""
    if "://" in text:
        if _WHOLE_URL.fullmatch(text):  # a URL-shaped value (an api_base): strip it whole
            return strip_url_credentials(text)
        text = URL_IN_TEXT.sub(lambda m: strip_url_credentials(m.group(0)), text)
    if "=" in text:
        text = _PARAM_IN_TEXT.sub(_redact_bare_param, text)
    if ":" in text or "=" in text:
        text = _KEY_ASSIGN_IN_TEXT.sub(r"\1\2[redacted]", text)
    return text
