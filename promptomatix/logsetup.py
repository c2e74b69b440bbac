"""The library's logging manners: the `promptomatix` logger gets a handler of its own, so its WARNINGs ("no change:
…", retry lines) never reach a host program's stderr through Python's last-resort handler. A host that configures
logging sees them through its handlers as usual. The CLI owns its process and keeps printing them (`show_warnings`)."""

from __future__ import annotations

import logging


class _LibraryHandler(logging.NullHandler):
    """A NullHandler, except in the CLI: there a record no other handler takes goes where the last-resort handler
    sent it before (stderr, WARNING and up), so the command shows what it always showed."""

    cli = False

    def handle(self, record: logging.LogRecord) -> bool:  # NullHandler.handle does nothing
        last = logging.lastResort
        if self.cli and last is not None and record.levelno >= last.level and not _others(record.name, self):
            last.handle(record)
        return True


def _others(name: str, mine: logging.Handler) -> bool:
    """Whether a handler other than `mine` would see a record of logger `name` (as `Logger.callHandlers` walks)."""
    logger: logging.Logger | None = logging.getLogger(name)
    while logger is not None:
        if any(h is not mine for h in logger.handlers):
            return True
        logger = logger.parent if logger.propagate else None
    return False


HANDLER = _LibraryHandler()


def install() -> None:
    """Give the `promptomatix` logger its handler (once)."""
    root = logging.getLogger("promptomatix")
    if HANDLER not in root.handlers:
        root.addHandler(HANDLER)


def show_warnings() -> None:
    """The CLI: records nobody else handles go to stderr, as they did before the library had a handler."""
    HANDLER.cli = True
    install()


install()
