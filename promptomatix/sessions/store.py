"""The on-disk session store: one directory per session, holding a human-readable `session.json`.

Layout: ``<root>/<id>/session.json`` (plus whatever the backends keep beside it, such as a cache or a
saved program). Guarantees, because a session is the only record of a paid-for run:

- writes are atomic (temp file in the same directory, fsync, rename, fsync of the directory), so a
  crash leaves the previous file intact;
- read-modify-write goes through `update`, under an exclusive inter-process lock per session, so two
  processes adding feedback at once both land; a `save` from a stale copy is refused (`revision`);
- a file that does not load (corrupt, or written by a newer schema) is reported and never overwritten;
- ids are validated and resolved paths must stay directly inside the root; an entry that is a symlink is
  refused (`delete` removes the link only), and lock files are never opened through a link (`lockfile`);
- every write is scrubbed of credentials (`secrets.scrub`); URLs lose userinfo and credential parameters
  (the URL still works), and an event records which run_config URL had them (`stripped_credentials()`);
- at most one run per session at a time, across processes (`run_lock`; `live_run` tells who holds it);
- an OS error on a write names the path and the fix (read-only, permission denied, disk full).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from promptomatix.errors import ConfigurationError, NotFoundError, SessionError
from promptomatix.sessions.fs import WRITABLE_HINT, atomic_write, try_lock, writing
from promptomatix.sessions.fs import display as _display
from promptomatix.sessions.ids import is_valid_id, new_id, validate_id
from promptomatix.sessions.lockfile import open_lock
from promptomatix.sessions.models import SCHEMA_VERSION, Session, SessionSummary, utcnow
from promptomatix.sessions.runlock import hold_run_lock, live_owner
from promptomatix.sessions.secrets import env_secret_values, scrub, strip_config_urls, urls_with_credentials
from promptomatix.sessions.store_errors import corrupt_session, linked_session, no_versions
from promptomatix.sessions.uploads import remove_upload, upload_of

SESSIONS_DIR_ENV = "PROMPTOMATIX_SESSIONS_DIR"
DEFAULT_SESSIONS_DIR = "sessions"
SESSION_FILE = "session.json"
LOCK_FILE = ".lock"
LOCK_TIMEOUT_S = 30.0
ExportFormat = Literal["text", "json", "dspy"]

# Sections holding user data (dataset rows, demos): a `password` or `token` column there is data, so
# only unambiguous credential keys are dropped; key-shaped values are still redacted.
_DATA_SECTIONS = frozenset({"data"})
_VERSION_DATA_FIELDS = frozenset({"demos", "program_json", "candidates"})
_FEEDBACK_DATA_FIELDS = frozenset({"details"})


def scrub_session_payload(doc: dict[str, Any]) -> dict[str, Any]:
    """Scrub a dumped session: full scrubbing for configuration, data-safe scrubbing for user data."""

    env_values = env_secret_values()  # read once per write, not once per field

    def fields(item: dict[str, Any], data_fields: frozenset[str]) -> dict[str, Any]:
        return {k: scrub(v, keep_ambiguous_keys=k in data_fields, env_values=env_values) for k, v in item.items()}

    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "versions" and isinstance(value, list):
            out[key] = [fields(v, _VERSION_DATA_FIELDS) for v in value]
        elif key == "feedback" and isinstance(value, list):
            out[key] = [fields(f, _FEEDBACK_DATA_FIELDS) for f in value]
        else:
            out[key] = scrub(value, keep_ambiguous_keys=key in _DATA_SECTIONS, env_values=env_values)
    return out


class SessionStore:
    """Sessions under `root` (default: $PROMPTOMATIX_SESSIONS_DIR, else ./sessions, fixed at construction)."""

    def __init__(self, root: Path | str | None = None) -> None:
        if root is None:
            root = os.environ.get(SESSIONS_DIR_ENV) or DEFAULT_SESSIONS_DIR
        if not isinstance(root, (str, os.PathLike)):
            raise ConfigurationError(f"sessions_dir must be a path, got {type(root).__name__}")
        self.root = Path(root).expanduser().absolute()

    def __repr__(self) -> str:
        return f"SessionStore({str(self.root)!r})"

    # --- paths ----------------------------------------------------------------------------------

    def session_dir(self, session_id: str) -> Path:
        """The session's directory (which may not exist yet); never outside the root, never through a link."""
        entry = self._entry(session_id)
        if entry.is_symlink():  # its store would be wherever the link points: only `delete` acts on it
            raise linked_session(session_id, entry)
        path = entry.resolve()
        if path.parent != entry.parent:
            raise SessionError(f"session {session_id!r} resolves outside {_display(entry.parent)}; refusing to use it")
        return path

    def _entry(self, session_id: str) -> Path:
        """`<root>/<id>` as named in the root (a link there is not followed)."""
        validate_id(session_id)
        return self.root.resolve() / session_id

    def session_file(self, session_id: str) -> Path:
        return self.session_dir(session_id) / SESSION_FILE

    def exists(self, session_id: str) -> bool:
        return self.session_file(session_id).is_file()

    @contextmanager
    def lock(self, session_id: str, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
        """Exclusive inter-process lock on one session (flock on `<dir>/.lock`). Not re-entrant."""
        directory = self.session_dir(session_id)
        if not directory.is_dir():
            raise self._missing(session_id)
        fd = open_lock(directory / LOCK_FILE)  # never through a link: nothing is created outside the store
        try:
            deadline = time.monotonic() + timeout
            delay = 0.002
            while not try_lock(fd):
                if time.monotonic() > deadline:
                    raise SessionError(
                        f"session {session_id} is locked by another process",
                        hint="wait for the other command to finish (the lock is freed when its process exits)",
                    )
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    @contextmanager
    def run_lock(self, session_id: str, *, command: str) -> Iterator[dict[str, Any]]:
        """Hold the session's run lock for a whole run: at most one live run per session, across processes.

        Wrap every command that runs models on a session (optimize after the session is created, refine,
        resume, feedback generate) so a second one refuses at once instead of paying twice::

            with store.run_lock(session_id, command="resume"):
                ...  # the whole run, including saving its result

        If another process holds it, raises SessionError "session X is busy: `resume` running as process
        1234 on HOST since 12:03:11" (hint: wait for it to finish or stop it with Ctrl-C). It is an OS
        lock (flock on ``<dir>/.run.lock``): released when the block exits or the process dies, even by
        SIGKILL. Re-entrant for the thread holding it; for a lock spanning methods, enter it on an
        ``ExitStack``. Yields the owner record {pid, host, command, started}. `sessions delete` takes it
        too; feedback add/dismiss do not (they are short updates under `lock`).
        """
        with hold_run_lock(self.session_dir(session_id), session_id, command=command) as owner:
            yield owner

    def live_run(self, session_id: str) -> dict[str, Any] | None:
        """The owner {pid, host, command, started} of the run holding the session now, else None.

        Probed with the OS lock, so a session whose status says "running" but whose process died shows
        None here (display it as stale: `resume` continues it).
        """
        if self._entry(session_id).is_symlink():
            return None  # every run refuses a linked entry (`session_dir`): none can hold it
        return live_owner(self.session_dir(session_id))

    # --- read -----------------------------------------------------------------------------------

    def load(self, session_id: str) -> Session:
        return self._read(session_id)

    def _missing(self, session_id: str) -> SessionError:
        return NotFoundError(
            f"no session {session_id!r} in {_display(self.root)}",
            hint="see `promptomatix sessions list`",
        )

    def _read(self, session_id: str) -> Session:
        path = self.session_file(session_id)
        shown = _display(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise self._missing(session_id) from None
        except OSError as exc:
            raise SessionError(f"cannot read {shown}: {exc.strerror or exc}") from exc

        def corrupt(where: str, why: str) -> SessionError:
            return corrupt_session(shown, session_id, where, why)

        try:
            doc = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise corrupt(f"byte {exc.start}", "not UTF-8 text") from exc
        except json.JSONDecodeError as exc:
            raise corrupt(f"line {exc.lineno}", exc.msg) from exc
        if not isinstance(doc, dict):
            raise corrupt("line 1", "not a JSON object")
        version = doc.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise corrupt("schema_version", f"missing or invalid schema_version {version!r}")
        if version > SCHEMA_VERSION:
            raise SessionError(
                f"{shown} was written by a newer Promptomatix (schema {version}; this one reads up to "
                f"{SCHEMA_VERSION}); it was left untouched",
                hint="upgrade Promptomatix to open it",
            )
        stripped = strip_config_urls(doc.get("run_config"))  # older versions left them in (or masked)
        try:
            session = Session.model_validate(doc)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"]) or "top level"
            raise corrupt(loc, err["msg"]) from exc
        if session.session_id != session_id:
            raise corrupt("session_id", f"the file says {session.session_id!r} but lives in directory {session_id!r}")
        session.note_stripped_credentials(stripped)
        return session

    # --- write ----------------------------------------------------------------------------------

    def create(self, session: Session) -> Session:
        """Write a new session; SessionError if one with that id already exists."""
        directory = self.session_dir(session.session_id)
        with writing(directory, "create"):
            directory.mkdir(parents=True, exist_ok=True)
        with self.lock(session.session_id):
            if self.session_file(session.session_id).exists():
                raise SessionError(f"session {session.session_id} already exists in {_display(self.root)}")
            self._write(session)
        return session

    def new_session(self, **fields: Any) -> Session:
        """Create a session with a freshly generated id (retrying on the unlikely collision)."""
        with writing(self.root, "create"):
            self.root.mkdir(parents=True, exist_ok=True)
        for _ in range(10):
            session_id = new_id()
            try:
                with writing(self.root, "create a session in"):
                    self.session_dir(session_id).mkdir()  # atomic claim of the id
            except SessionError as exc:
                if isinstance(exc.__cause__, FileExistsError):
                    continue
                raise
            return self.create(Session(session_id=session_id, **fields))
        raise SessionError(f"could not allocate a new session id in {_display(self.root)}")

    def save(self, session: Session, *, force: bool = False) -> Session:
        """Atomically write `session`, bumping its revision.

        Refused when the file on disk does not load (it is never overwritten) and, unless `force`, when
        another process saved since this copy was loaded. Use `update` for read-modify-write.
        """
        with self.lock(session.session_id):
            self._save_locked(session, force=force)
        return session

    def update(self, session_id: str, fn: Callable[[Session], Any]) -> Session:
        """Load, apply `fn` (mutate in place, or return a new Session), save: all under the session lock."""
        with self.lock(session_id):
            session = self._read(session_id)  # raises for corrupt/newer files: they are never overwritten
            read_revision = session.revision
            result = fn(session)
            if isinstance(result, Session):
                if result.session_id != session_id:
                    raise SessionError(f"update of {session_id} returned session {result.session_id}")
                session = result
            self._write(session, revision=read_revision + 1)  # we hold the lock and just read it
        return session

    def _save_locked(self, session: Session, *, force: bool) -> None:
        if not self.exists(session.session_id):
            raise SessionError(
                f"session {session.session_id} does not exist in {_display(self.root)}",
                hint="create it first with SessionStore.create()",
            )
        current = self._read(session.session_id)  # raises for corrupt/newer files: never overwrite them
        if not force and current.revision != session.revision:
            raise SessionError(
                f"session {session.session_id} was changed by another process since it was loaded "
                f"(revision {current.revision} on disk, {session.revision} in memory); nothing was written",
                hint="reload it, or make the change with SessionStore.update()",
            )
        self._write(session, revision=current.revision + 1)

    def _write(self, session: Session, *, revision: int | None = None) -> None:
        session.note_stripped_credentials(urls_with_credentials(session.run_config))
        now = utcnow()
        new_revision = session.revision + 1 if revision is None else revision
        doc = session.model_dump(mode="json")
        doc["revision"] = new_revision
        doc["updated_at"] = now.isoformat().replace("+00:00", "Z")
        text = self._serialize(doc)
        atomic_write(self.session_file(session.session_id), text)
        session.revision = new_revision
        session.updated_at = now

    @staticmethod
    def _serialize(doc: dict[str, Any]) -> str:
        doc = scrub_session_payload(doc)
        try:  # never write a file we could not read back
            Session.model_validate(doc)
        except ValidationError as exc:
            raise SessionError(f"session {doc.get('session_id')} would not load back: {exc}") from exc
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"

    def require(self, session_id: str) -> Path:
        """The session's directory; SessionError when there is none (its file is not read: it may be corrupt).

        An entry that is a symlink is returned as it is, unresolved, so it can be deleted (which removes the
        link only); every other use of it is refused by `session_dir`, with that fix."""
        entry = self._entry(session_id)
        if entry.is_symlink():
            return entry
        directory = self.session_dir(session_id)
        if not directory.is_dir():
            raise self._missing(session_id)
        return directory

    def delete(self, session_id: str) -> None:
        """Remove the session's directory, and the copy of its data the web UI uploaded (never a user's own file);
        refused (SessionError "busy") while a run holds its run lock. Works on a full disk (it is how space is
        freed): the run lock's owner record is best effort here. An entry that is a symlink is unlinked; what
        it points to is never touched."""
        directory = self.require(session_id)
        if directory.is_symlink():
            with writing(directory, "delete"):
                directory.unlink()
            return
        lock = hold_run_lock(directory, session_id, command="delete", best_effort_record=True)
        with lock, writing(directory, "delete"):
            upload = upload_of(self.root, directory / SESSION_FILE)
            shutil.rmtree(directory)
        remove_upload(upload)

    # --- listing and export ---------------------------------------------------------------------

    def list(self) -> list[SessionSummary]:
        """Summaries, newest first. Unreadable sessions are listed with `error` set, not raised."""
        return [summary for summary, _ in self.listed()]

    def listed(self) -> list[tuple[SessionSummary, Session | None]]:
        """As `list`, each summary with the session it was read from (None: unreadable), so a caller that needs
        more than the summary does not read every file twice."""
        if not self.root.is_dir():
            if self.root.exists():
                raise SessionError(f"the sessions dir {_display(self.root)} is not a directory", hint=WRITABLE_HINT)
            return []
        rows: list[tuple[datetime, SessionSummary, Session | None]] = []
        for entry in self.root.iterdir():
            if not is_valid_id(entry.name) or not (entry / SESSION_FILE).is_file():
                continue
            session: Session | None = None
            try:
                session = self._read(entry.name)
                summary = SessionSummary.of(session)
                summary.live_run = live_owner(entry)
                when = summary.created_at or datetime.min.replace(tzinfo=timezone.utc)
            except SessionError as exc:  # listed as unreadable, with its error and fix: no log line besides
                mtime = datetime.fromtimestamp((entry / SESSION_FILE).stat().st_mtime, timezone.utc)
                summary = SessionSummary(session_id=entry.name, updated_at=mtime, error=str(exc))
                when = mtime
            rows.append((when, summary, session))
        rows.sort(key=lambda row: (row[0], row[1].session_id), reverse=True)
        return [(summary, session) for _, summary, session in rows]

    def export(self, session_id: str, format: ExportFormat = "text", version: int | None = None) -> str:
        """The prompt as the model sees it (text), the session or one version of it with the task (json), or the
        saved DSPy program (dspy)."""
        session = self.load(session_id)
        if format == "json":
            if version is None:
                return self._serialize(session.model_dump(mode="json"))
            chosen = session.get_version(version)  # it was checked, then the whole session was exported
            doc = scrub_session_payload({"session_id": session.session_id, "description": session.description,
                                         "task_spec": session.task_spec, "run_config": session.run_config,
                                         "versions": [chosen.model_dump(mode="json")]})  # fmt: skip
            doc["version"] = doc.pop("versions")[0]  # scrubbed as a version (a data field named `token` stays)
            return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
        if format not in ("text", "dspy"):
            raise ConfigurationError(f"unknown export format {format!r}; choose text, json or dspy")
        if not session.versions:
            raise no_versions(session, self.live_run(session_id))
        chosen = session.get_version(version)
        if format == "text":
            return chosen.prompt
        if chosen.program_json is None:
            raise SessionError(
                f"version {chosen.version} of session {session_id} has no saved DSPy program "
                f"(backend {chosen.backend})",
                hint="export it with --format text instead",
            )
        return json.dumps(scrub(chosen.program_json, keep_ambiguous_keys=True), indent=2, ensure_ascii=False)
