"""Strip credentials from URLs before they go into a message, a log line or anything persisted.

Userinfo (`user:pass@`) and query parameters whose name suggests a credential are removed, not masked, so the
URL that remains still names the server (and still works where the credential is supplied another way).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: a query parameter is a credential when one of its name's parts (split on - _ .) is one of these ...
_CRED_PARTS = frozenset(
    {"key", "apikey", "token", "secret", "code", "sig", "signature", "auth", "password", "passwd", "pwd",
     "credential", "credentials", "session", "sessionid", "jwt", "bearer", "authorization", "sas", "signed"}
)  # fmt: skip
#: ... or its whole name contains one of these.
_CRED_SUBSTRINGS = ("key", "token", "secret", "passw", "auth", "signature", "credential")
_URL_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def is_credential_param(name: str) -> bool:
    low = name.lower()
    parts = set(re.split(r"[-_.]+", low))
    return bool(parts & _CRED_PARTS) or any(s in low for s in _CRED_SUBSTRINGS)


def redact_url(url: str) -> str:
    """`http://u:p@host:8/v1?api-key=x&v=2` → `http://host:8/v1?v=2`. Not a URL → returned unchanged."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return url
    if not parts.scheme or not host:
        return url
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not is_credential_param(k)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_text(text: str, *secrets: str | None) -> str:
    """Redact every URL inside free text (a provider's error message) and any of the given secret values."""
    out = _URL_RE.sub(lambda m: redact_url(m.group(0)), text)
    for s in secrets:
        if s and len(s) >= 4:
            out = out.replace(s, "[redacted]")
    return out
