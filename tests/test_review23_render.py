"""Review 23, what the CLI prints: prompts in the report and in `sessions show` wrap, never cropped (F1); a stdout
that is not UTF-8 still gets the report and the JSON, exit 0 (F2); `… | head` exits 141 quietly (F4); the batch
summary and `models list` never crop a name or an id (F8); Ctrl-C while the CLI imports exits 130 without a
traceback (F15); `sessions show --help` shows no `[default: 0, 0]` (F13). Scripted fake models only."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from promptomatix.sessions import SessionStore
from tests.batch_helpers import TASK, write_data, write_jobs, write_script

CLI = str(Path(sys.executable).parent / "promptomatix")
LONG = ("Read the whole review carefully and say negative if the review complains about anything at all, including "
        "the acting, the plot or the ending, otherwise say positive.")  # fmt: skip
SCRIPT = {
    "task": {"rules": [[["complains", "awful"], {"label": "negative"}]], "default": {"label": "positive"}},
    "teacher": {"rules": [['{"prompt"', {"prompt": LONG}]], "default": {}},
}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    write_data(tmp_path)
    return {**os.environ, "PROMPTOMATIX_FAKE_LM": str(write_script(tmp_path, SCRIPT)),
            "PROMPTOMATIX_SESSIONS_DIR": str(tmp_path / "s"), "DATA": str(tmp_path / "reviews.csv")}  # fmt: skip


def cli(env: dict[str, str], *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], env=env, capture_output=True, timeout=300, **kw)


def _flat(text: str) -> str:
    """The text inside the boxes, one space between words: a wrapped line reads as the original line."""
    inner = [line.strip().strip("│|").strip() for line in text.splitlines()]
    return " ".join(" ".join(inner).split())


@pytest.fixture
def sid(env: dict[str, str]) -> str:
    r = cli(env, "optimize", TASK, "--data", env["DATA"], "-q", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["session_id"]


# F1 ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("columns", ["80", "40"])
def test_the_optimize_report_wraps_the_prompt_and_keeps_the_session_id(env, columns):
    r = cli({**env, "COLUMNS": columns}, "optimize", TASK, "--data", env["DATA"], "-q", text=True)
    assert r.returncode == 0, r.stderr
    (session,) = SessionStore(env["PROMPTOMATIX_SESSIONS_DIR"]).list()
    flat = _flat(r.stdout)
    assert LONG in flat  # every word, in order: wrapped, not cropped at the panel's edge
    assert "Answer with exactly one of: positive, negative." in flat
    assert f"+{LONG}" in flat.replace("+ ", "+")  # the initial → optimized diff too
    assert session.session_id in r.stdout  # the title is never cut
    assert max(len(line) for line in r.stdout.splitlines() if line.startswith(("│", "╭", "╰"))) <= int(columns)


def test_sessions_show_wraps_the_prompt_and_the_diff(env, sid):
    r = cli({**env, "COLUMNS": "40"}, "sessions", "show", sid, "--diff", "1", "1", text=True)
    assert r.returncode == 0, r.stderr
    assert "(identical)" in r.stdout and "prompt diff v1 → v1" in r.stdout
    r = cli({**env, "COLUMNS": "40"}, "sessions", "show", sid, text=True)
    assert r.returncode == 0, r.stderr
    assert LONG in _flat(r.stdout) and "prompt v1" in r.stdout


# F2 ---------------------------------------------------------------------------------------------------------------


def test_a_cp1252_stdout_gets_the_report_and_exit_0(env):
    r = cli({**env, "PYTHONIOENCODING": "cp1252"}, "optimize", TASK, "--data", env["DATA"], "-q")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode("cp1252")
    assert "optimized prompt" in out and "verdict:" in out and "next: promptomatix" in out
    lines = out.splitlines()
    (top,) = [i for i, line in enumerate(lines) if "initial \\u2192 optimized" in line]  # ASCII box, escaped "→"
    assert lines[top].startswith("+-") and len(lines[top]) == len(lines[top + 1]) == 80  # measured as written


def test_json_on_a_cp1252_stdout_is_the_exact_document(env):
    task = TASK + " ✓ مراجعة"  # characters cp1252 lacks
    r = cli({**env, "PYTHONIOENCODING": "cp1252"}, "optimize", task, "--data", env["DATA"], "-q", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout.decode("ascii"))
    assert task in json.dumps(doc, ensure_ascii=False)


def test_print_json_is_ascii_only_on_a_stream_that_is_not_utf8(monkeypatch):
    from promptomatix.cli.render import print_json

    for encoding, escaped in (("ascii", True), ("cp1252", True), ("utf-8", False)):
        buf = io.BytesIO()
        monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(buf, encoding=encoding))
        print_json({"text": "a → b"})
        sys.stdout.flush()
        raw = buf.getvalue().decode(encoding)
        assert json.loads(raw) == {"text": "a → b"} and ("\\u2192" in raw) == escaped


# F4 ---------------------------------------------------------------------------------------------------------------


def _into_closed_pipe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """The command with stdout a pipe nobody reads any more (`| head` after it left): every write is EPIPE."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([CLI, *args], env=env, stdout=write, stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(write)


@pytest.mark.parametrize(
    "args", [["sessions", "list"], ["models", "list"], ["sessions", "show", "SID", "--candidates"]]
)
def test_a_closed_pipe_exits_141_quietly(env, sid, args):
    r = _into_closed_pipe(env, *(sid if a == "SID" else a for a in args))
    assert r.returncode == 141 and r.stderr == ""


def test_a_closed_pipe_after_a_run_exits_141_and_the_run_is_saved(env):
    r = _into_closed_pipe(env, "optimize", TASK, "--data", env["DATA"], "-q")
    assert r.returncode == 141 and "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
    (session,) = SessionStore(env["PROMPTOMATIX_SESSIONS_DIR"]).list()
    assert session.state == "completed"


# F8 ---------------------------------------------------------------------------------------------------------------


def test_the_batch_summary_never_crops_the_job_name_or_the_session_id(tmp_path, monkeypatch):
    from promptomatix.cli.app import app

    name = "sentiment-reviews-with-a-rather-long-job-name"
    monkeypatch.setenv("PROMPTOMATIX_FAKE_LM", str(write_script(tmp_path, SCRIPT)))
    monkeypatch.setenv("PROMPTOMATIX_SESSIONS_DIR", str(tmp_path / "s"))
    monkeypatch.setenv("COLUMNS", "40")
    jobs = write_jobs(tmp_path, f"jobs:\n  - {{name: {name}}}\n")
    r = CliRunner().invoke(app, ["batch", str(jobs), "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    (session,) = SessionStore(tmp_path / "s").list()
    (row,) = [line for line in r.stdout.splitlines() if session.session_id in line]
    assert row.startswith(session.session_id) and row.endswith(name) and " completed " in row
    assert "…" not in r.stdout


def test_models_list_never_crops_a_model_name(monkeypatch):
    from promptomatix.cli.app import app
    from promptomatix.lm.catalog import KNOWN_MODELS

    monkeypatch.setenv("COLUMNS", "40")
    r = CliRunner().invoke(app, ["models", "list"], catch_exceptions=False)
    assert r.exit_code == 0
    names = [line.split()[0] for line in r.stdout.splitlines()[1:]]
    assert names == list(KNOWN_MODELS) and "…" not in r.stdout


# F13, F15 ---------------------------------------------------------------------------------------------------------


def test_sessions_show_help_shows_no_internal_default_for_diff(monkeypatch):
    from promptomatix.cli.app import app

    monkeypatch.setenv("COLUMNS", "200")
    r = CliRunner().invoke(app, ["sessions", "show", "--help"])
    (line,) = [x for x in r.stdout.splitlines() if "--diff" in x]
    assert "0, 0" not in line and "default" not in line


_CTRL_C_AT_IMPORT = """
import os, sys
sys.argv[0] = "promptomatix"
class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == {target!r}:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), 2)  # SIGINT, as a Ctrl-C while this module is being imported
        return None
sys.meta_path.insert(0, CtrlC())
from promptomatix.cli.app import main
"""


@pytest.mark.parametrize("target", ["signal", "threading", "typer"])
def test_ctrl_c_while_the_cli_imports_exits_130_without_a_traceback(target):
    fresh = subprocess.run([sys.executable, "-c", "import sys; print('signal' in sys.modules)"], capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    assert fresh.stdout.strip() == "False"  # else the hook below could not see `signal` imported
    r = subprocess.run([sys.executable, "-c", _CTRL_C_AT_IMPORT.format(target=target)], capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert r.returncode == 130 and r.stderr == "Error: interrupted\n", r.stderr


def test_help_imports_no_rich_dspy_or_litellm():
    code = ("import sys\nfrom promptomatix.cli.app import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n"
            "    pass\nprint(sorted(m for m in ('rich', 'dspy', 'litellm') if m in sys.modules))")  # fmt: skip
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == "[]", r.stdout + r.stderr


def test_the_diff_sentinel_still_means_every_version_against_its_parent():
    from promptomatix.cli.sessions_cmd import _diff_pairs

    class V:
        def __init__(self, version: int, parent: int | None) -> None:
            self.version, self.parent = version, parent

    class S:
        versions = [V(1, None), V(2, 1)]

    assert _diff_pairs(S(), (0, 0)) == [(1, 2)]
