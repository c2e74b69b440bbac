"""Remove credentials from JSON-like data before it is written anywhere.

Upstream wrote `model_api_key` to every session file in clear text. Here every session write goes
through `scrub`, and logs or exports can reuse it. Two layers, because either alone misses cases:

1. keys whose *name* says "credential" are dropped (the value may be any shape);
2. string *values* that look like a known key format, or that contain the value of a credential
   environment variable, have that part replaced by ``[redacted]`` (catches keys pasted into a
   prompt, a URL or a settings string); URLs lose their userinfo and credential parameters
   entirely (`strip_url_credentials`), so a stored `api_base` still works once the key is supplied again. The
   value of a URL setting (``api_base``, ``base_url``...) in configuration is read as a URL even without a
   scheme (``user:pass@host:8000/v1``).

Key names come in two tiers. Unambiguous ones (``api_key``, ``authorization``, ``client_secret``...)
are dropped everywhere. Ambiguous words (``password``, ``token``, ``secret``) are dropped in
configuration, but a dataset may legitimately have a ``password`` or ``token`` column, so callers
scrubbing user data pass ``keep_ambiguous_keys=True`` and rely on the value layer there.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import Any

from promptomatix.sessions.urls import (
    is_credential_param,
    strip_url_credentials,
    strip_urls_in_text,
    url_has_credentials,
)

__all__ = [
    "REDACTED",
    "ScrubFilter",
    "env_secret_values",
    "forget_secrets",
    "is_credential_param",
    "is_secret_key",
    "is_url_key",
    "remember_secret",
    "scrub",
    "scrub_exception",
    "scrub_text",
    "strip_config_urls",
    "strip_url_credentials",
    "url_has_credentials",
    "urls_with_credentials",
]

REDACTED = "[redacted]"

# Dropped wherever they appear. Compared after lower-casing and mapping '-' to '_'.
_STRONG_NAMES = frozenset(
    {
        "api_key",
        "apikey",
        "api_token",
        "api_secret",
        "authorization",
        "proxy_authorization",
        "x_api_key",
        "access_token",
        "refresh_token",
        "auth_token",
        "bearer_token",
        "id_token",
        "session_token",
        "client_secret",
        "secret_key",
        "access_key",
        "secret_access_key",
        "private_key",
    }
)
_STRONG_SUFFIXES = ("_api_key", "_apikey", "_api_token", "_api_secret", "_secret_key", "_access_key")

# Dropped in configuration, kept in user data (see module docstring).
_AMBIGUOUS_NAMES = frozenset({"password", "passwd", "token", "secret", "credentials", "auth", "cookie"})
_AMBIGUOUS_SUFFIXES = ("_password", "_passwd", "_secret", "_token", "_credentials")
# `max_token`, `prompt_token`... are counts, not credentials (plural `*_tokens` never matches anyway).
_COUNT_PREFIXES = frozenset({"max", "min", "prompt", "completion", "total", "input", "output", "num", "n"})

_VALUE_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # OpenAI / Anthropic / OpenRouter style: sk-..., sk-proj-..., sk-ant-..., sk-or-...
    (re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_\-]{16,}"), REDACTED),
    (re.compile(r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_\-]{30,}"), REDACTED),  # Google
    (re.compile(r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{20,}"), REDACTED),  # Hugging Face
    (re.compile(r"(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9\-]{10,}"), REDACTED),  # Slack
    (re.compile(r"(?<![A-Za-z0-9])gh[pousr]_[A-Za-z0-9]{30,}"), REDACTED),  # GitHub
    (re.compile(r"(?<![A-Za-z0-9])gsk_[A-Za-z0-9]{20,}"), REDACTED),  # Groq
    (re.compile(r"(?<![A-Za-z0-9])r8_[A-Za-z0-9]{20,}"), REDACTED),  # Replicate
    (re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])"), REDACTED),  # AWS access key id
    (re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]{8,}"), r"\1 " + REDACTED),
]

# Cheap pre-check: every pattern above needs one of these; most strings (dataset rows) have none.
_TRIGGER = re.compile(
    r"sk-|AIza|hf_|xox|gh[pousr]_|gsk_|r8_|AKIA|ASIA|(?i:bearer|basic|api[-_]?key|access[-_]token|client[-_]secret)"
    r"|://|[?&;]"
)

# URL settings: their values are URLs even when the scheme was left out (`--api-base user:pw@host:8000/v1`). Only
# settings' names: a data field named `url` holds text ("paypal.com@evil.ru/login" must stay what the row says).
_URL_NAMES = frozenset({"api_base", "base_url", "api_url"})
_URL_SUFFIXES = ("_api_base", "_base_url")

_ENV_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET", "_SECRET_KEY", "_ACCESS_KEY", "_PASSWORD", "_APIKEY")
_MIN_ENV_SECRET_LEN = 8


def _norm(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def is_secret_key(name: str, *, keep_ambiguous: bool = False) -> bool:
    """True if a mapping key names a credential (so its value must not be written)."""
    key = _norm(name)
    if key in _STRONG_NAMES or key.endswith(_STRONG_SUFFIXES):
        return True
    if keep_ambiguous:
        return False
    if key in _AMBIGUOUS_NAMES:
        return True
    if key.endswith(_AMBIGUOUS_SUFFIXES):
        prefix = key.rsplit("_", 1)[0]
        return prefix not in _COUNT_PREFIXES
    return False


_known: set[str] = set()  # keys given to this process (--api-key): no pattern matches an Azure-style hex key
_known_lock = threading.Lock()
_MIN_KNOWN_LEN = 6


def remember_secret(value: str | None) -> None:
    """Scrub `value` (an API key given with --api-key or to the API) wherever this process writes or prints: a key
    that is also a path segment of --api-base was stored in session.json and printed in every error line."""
    if isinstance(value, str) and len(value.strip()) >= _MIN_KNOWN_LEN:
        with _known_lock:
            _known.add(value.strip())


def forget_secrets() -> None:
    """Drop the remembered keys (tests)."""
    with _known_lock:
        _known.clear()


def env_secret_values(environ: dict[str, str] | None = None) -> list[str]:
    """Values of credential-looking environment variables (read at call time) and, for the process's own
    environment, the keys remembered by `remember_secret`; longest first."""
    env = os.environ if environ is None else environ
    values = {
        v
        for k, v in env.items()
        if k.upper().endswith(_ENV_SUFFIXES) and isinstance(v, str) and len(v) >= _MIN_ENV_SECRET_LEN
    }
    if environ is None:
        with _known_lock:
            values |= _known
    return sorted(values, key=len, reverse=True)


def scrub_text(text: str, *, env_values: list[str] | None = None) -> str:
    """Replace key-shaped substrings and credential env-var values in one string."""
    for value in env_secret_values() if env_values is None else env_values:
        if value in text:
            text = text.replace(value, REDACTED)
    if _TRIGGER.search(text) is None:
        return text
    text = strip_urls_in_text(text)
    for pattern, replacement in _VALUE_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def scrub_exception(e: BaseException, *secrets: str | None) -> None:
    """Scrub the messages of `e` and the exceptions it chains, in place: a traceback (PROMPTOMATIX_DEBUG=1) prints
    each of them, and a provider SDK's error quotes the rejected key ("Incorrect API key provided: ...")."""
    env_values = sorted({*env_secret_values(), *(s for s in secrets if s and len(s) >= 4)}, key=len, reverse=True)
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen and len(seen) < 12:
        seen.add(id(cur))
        try:
            cur.args = tuple(scrub_text(a, env_values=env_values) if isinstance(a, str) else a for a in cur.args)
            for name in ("message", "msg"):
                value = getattr(cur, name, None)
                if isinstance(value, str):
                    setattr(cur, name, scrub_text(value, env_values=env_values))
        except (AttributeError, TypeError):  # a read-only exception type: its message stays as it is
            pass
        cur = cur.__cause__ or cur.__context__


class ScrubFilter(logging.Filter):
    """A logging filter that scrubs each record's message (a provider library's own DEBUG logging quoted the key
    from error bodies 41 times in one run)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error handling
            return True
        clean = scrub_text(text)
        if clean != text:
            record.msg, record.args = clean, None
        return True


def scrub(obj: Any, *, keep_ambiguous_keys: bool = False, env_values: list[str] | None = None) -> Any:
    """Return a copy of JSON-like `obj` with credential keys dropped and key-shaped strings redacted.

    Dicts, lists and tuples are walked; strings are scrubbed; other values are returned as they are.
    `env_values` (from `env_secret_values()`, read now when not given) lets many calls share one read.
    """
    return _walk(obj, keep_ambiguous_keys, env_secret_values() if env_values is None else env_values)


def _walk(obj: Any, keep_ambiguous: bool, env_values: list[str]) -> Any:
    if isinstance(obj, str):
        return scrub_text(obj, env_values=env_values)
    if isinstance(obj, dict):
        return {
            k: _walk(v if keep_ambiguous else _url_value(k, v), keep_ambiguous, env_values)
            for k, v in obj.items()
            if not (isinstance(k, str) and is_secret_key(k, keep_ambiguous=keep_ambiguous))
        }
    if isinstance(obj, (list, tuple)):
        return [_walk(v, keep_ambiguous, env_values) for v in obj]
    return obj


def is_url_key(name: Any) -> bool:
    """True if a mapping key names a URL setting (``api_base``, ``base_url``, ``model_api_base``...), whose value is read
    as a URL even without a scheme: ``user:pass@host:8000/v1`` has userinfo as surely as ``http://user:pass@…``."""
    if not isinstance(name, str):
        return False
    key = _norm(name)
    return key in _URL_NAMES or key.endswith(_URL_SUFFIXES)


def _url_value(key: Any, value: Any) -> Any:
    """A URL setting's value without its credentials (scheme or not); any other value as it is."""
    if isinstance(value, str) and is_url_key(key) and not any(c.isspace() for c in value.strip()):
        return strip_url_credentials(value)
    return value


def urls_with_credentials(config: dict[str, Any]) -> list[str]:
    """Keys of `config` (a run_config) whose value is a URL carrying credentials (a URL setting's value counts
    without a scheme too)."""
    return [
        k
        for k, v in config.items()
        if isinstance(v, str)
        and (("://" in v and url_has_credentials(v)) or _url_value(k, v) != v or (is_url_key(k) and _has_known(v)))
    ]


def _has_known(value: str) -> bool:
    """A remembered key inside `value` (a key that is a path segment of --api-base is scrubbed when saved)."""
    with _known_lock:
        return any(k in value for k in _known)


def strip_config_urls(config: Any) -> list[str]:
    """Strip credentials from the URL values of a run_config dict in place; the keys that changed."""
    if not isinstance(config, dict):
        return []
    changed = urls_with_credentials(config)
    for key in changed:
        config[key] = scrub_text(strip_url_credentials(config[key]))
    return changed
