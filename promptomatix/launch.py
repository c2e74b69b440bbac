"""The `promptomatix` command's entry point: its first act makes Ctrl-C exit 130 with one line, then it runs the CLI.

The console script used to import `promptomatix.cli.app` first, and the CLI's Ctrl-C handling exists only once that
module runs: a Ctrl-C while it was being imported (0.2 s after the start, on a loaded machine) printed Python's
KeyboardInterrupt traceback and exited -2. This module imports only `_signal` and `os` (both loaded by the interpreter
already), so the handler is in place before anything else; `promptomatix/__init__` is deliberately cheap too.
"""

import _signal  # the C module: `signal` imports enum first (~0.1 s before the handler)
import os

INTERRUPTED_EXIT = 130


def exit_interrupted(signum: int = 0, frame: object = None) -> None:
    """Leave at once with the one line: while starting there is no run to save, nothing to unwind."""
    os.write(2, b"Error: interrupted\n")
    os._exit(INTERRUPTED_EXIT)


def quiet_ctrl_c() -> None:
    """Ctrl-C is `exit_interrupted` until the CLI installs its own handler (which saves a run's best so far)."""
    try:  # noqa: SIM105  (contextlib would be one more import before the handler)
        _signal.signal(_signal.SIGINT, exit_interrupted)
    except ValueError:  # not the main thread
        pass


def main() -> None:
    """The console script's `main`: the handler first, then the CLI; a KeyboardInterrupt that slips past the CLI's
    error boundary (between two of its steps) is a Ctrl-C too. PROMPTOMATIX_DEBUG=1 keeps its traceback."""
    quiet_ctrl_c()
    try:
        from promptomatix.cli.app import main as run_cli

        run_cli()
    except KeyboardInterrupt:
        if os.environ.get("PROMPTOMATIX_DEBUG") == "1":
            raise
        exit_interrupted()
