"""Ctrl-C while the `promptomatix` command is still importing its CLI exits 130 with one line, no traceback.

The console script imported `promptomatix.cli.app` before any Ctrl-C handler existed, so a Ctrl-C then (0.2 s after
the start, on a loaded machine) printed Python's KeyboardInterrupt traceback and exited -2. Here the process sends
itself SIGINT, from a `sitecustomize` on PYTHONPATH, the moment the named module is first looked up: no timing, so the
result is the same on a quiet machine and a busy one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).parent / "promptomatix")
# Imported by `site` before the console script runs; the Ctrl-C lands while CTRL_C_AT is being imported.
CTRL_C_ON_IMPORT = """
import os, signal, sys

class CtrlCOnImport:
    def find_spec(self, name, path=None, target=None):
        if name == os.environ.get("CTRL_C_AT") and self in sys.meta_path:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlCOnImport())
"""


def launch(tmp_path: Path, module: str, *command: str) -> subprocess.CompletedProcess[str]:
    """Run `promptomatix *command` with a Ctrl-C landing while `module` is imported."""
    (tmp_path / "sitecustomize.py").write_text(CTRL_C_ON_IMPORT)
    env = dict(os.environ, PYTHONPATH=str(tmp_path), CTRL_C_AT=module, PROMPTOMATIX_SESSIONS_DIR=str(tmp_path / "s"))
    env.pop("PROMPTOMATIX_DEBUG", None)
    return subprocess.run([CLI, *command], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("module", ["promptomatix.cli", "promptomatix.cli.app", "typer"])
def test_ctrl_c_while_the_cli_imports_exits_130_with_one_line(tmp_path, module):
    done = launch(tmp_path, module, "optimize", "Classify the sentiment of a movie review", "-q")
    assert done.returncode == 130, done.stderr
    assert done.stderr == "Error: interrupted\n" and done.stdout == ""


def test_the_shim_lets_an_uninterrupted_start_through(tmp_path):
    """The Ctrl-C above comes from the shim: a module never imported means no Ctrl-C, and `--help` works."""
    done = launch(tmp_path, "no.such.module", "--help")
    assert done.returncode == 0 and "Usage" in done.stdout and done.stderr == ""


def test_a_ctrl_c_that_slips_past_the_cli_boundary_exits_130_with_one_line():
    """A KeyboardInterrupt between two of the CLI's steps (after its handler is swapped in, before its `try`) or
    after the command finished (flushing stdout) reached Python: a traceback and exit -2."""
    code = (
        "from promptomatix.cli import app\n"
        "def interrupted():\n    raise KeyboardInterrupt\n"
        "app.main = interrupted\n"
        "from promptomatix.launch import main\nmain()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PROMPTOMATIX_DEBUG"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 130 and done.stderr == "Error: interrupted\n", done.stderr
