"""Data files uploaded through the web UI's new-run form (beside the store, which removes them with a session).

An upload lives in `<sessions root>/.uploads/` because the run, and a later resume, read the data by path. It is
a full copy of the user's data, so it is readable by its owner only (like `session.json`) and it goes away with
what used it: the session that recorded it in `run_config.data` when that session is deleted (`SessionStore.delete`,
from the page or `promptomatix sessions delete`), a run that failed before it made a session, a refused form.
Only a file the UI wrote (its name pattern, directly inside that folder) is ever removed, never a user's own data.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

UPLOADS_DIR = ".uploads"  # inside the store root; not a valid session id, so never listed as a session
UPLOAD_TYPES = (".csv", ".json", ".jsonl")
_WRITTEN = re.compile(r"[A-Za-z0-9_-]{1,40}-[0-9a-f]{8}\.(csv|json|jsonl)")  # what `save_upload` names a file


def split_name(name: str) -> tuple[str, str]:
    """(stem, lower-case suffix) of an uploaded file's name. Not `Path.suffix`: a file named ".csv" has none."""
    base = re.split(r"[\\/]", name)[-1]
    stem, dot, ext = base.rpartition(".")
    return (stem, f".{ext.lower()}") if dot else (base, "")


def save_upload(root: Path, stem: str, suffix: str, body: bytes) -> Path:
    """Write `body` to a new owner-only file in root/.uploads; its name comes from `stem` (sanitized) and a random
    tail, so errors about the data name the user's file and two uploads never collide."""
    folder = root / UPLOADS_DIR
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", stem)[:40].strip("_") or "data"
    path = folder / f"{safe}-{secrets.token_hex(4)}{suffix}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(body)
    return path


def owned_upload(root: Path, data: Any) -> Path | None:
    """`data` (a run's data setting) when it is a file the UI uploaded into root/.uploads, else None."""
    if not isinstance(data, str) or not data or not Path(data).is_absolute():
        return None
    try:
        path = Path(data).resolve(strict=True)
        folder = (root / UPLOADS_DIR).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if path.parent != folder or not _WRITTEN.fullmatch(path.name) or not path.is_file():
        return None
    return path


def upload_of(root: Path, session_file: Path) -> Path | None:
    """The upload a session file records in run_config.data. Read raw, as the file may be corrupt: then each
    `"data": "<string>"` in it is tried (only a file the UI wrote can match, see `owned_upload`)."""
    try:
        raw = session_file.read_text(encoding="utf-8", errors="replace")
        doc = json.loads(raw)
    except OSError:
        return None
    except ValueError:
        for found in re.finditer(r'"data"\s*:\s*("(?:[^"\\]|\\.)*")', raw):
            try:
                path = owned_upload(root, json.loads(found.group(1)))
            except ValueError:
                continue
            if path is not None:
                return path
        return None
    config = doc.get("run_config") if isinstance(doc, dict) else None
    return owned_upload(root, config.get("data") if isinstance(config, dict) else None)


def remove_upload(path: Path | str | None) -> None:
    """Delete an upload; a failure is logged, never raised (what used it is already gone or refused)."""
    if not path:
        return
    try:
        Path(path).unlink(missing_ok=True)
    except OSError as e:
        log.warning("could not remove the uploaded data file %s: %s", path, e)
