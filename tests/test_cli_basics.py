"""CLI foundation: fast help without heavy imports, version, and one-line errors naming the fix."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from promptomatix.cli.app import app


def test_help_does_not_import_dspy_or_litellm():
    code = (
        "import sys\n"
        "from promptomatix.cli.app import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('dspy', 'litellm', 'datasets', 'xllamacpp') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY=\n" in out, out


def test_version():
    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0 and "promptomatix" in r.stdout


def _run_main(args):
    code = "import sys\nfrom promptomatix.cli.app import main\nmain(sys.argv[1:])\n"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)


def test_unknown_local_model_is_one_line_naming_the_fix():
    r = _run_main(["models", "run", "nosuch", "x"])
    assert r.returncode == 1
    lines = [line for line in r.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert "unknown local model 'nosuch'" in lines[0] and "smollm2-135m" in lines[0]
    assert "Traceback" not in r.stderr


def test_missing_gguf_is_one_line_naming_the_fix(tmp_path):
    r = _run_main(["models", "run", f"local:{tmp_path}/missing.gguf", "x"])
    assert r.returncode == 1
    assert "GGUF file not found" in r.stderr and "Traceback" not in r.stderr


def test_usage_error_exits_2():
    r = _run_main(["models", "run"])
    assert r.returncode == 2


def test_debug_shows_traceback(monkeypatch):
    code = "import sys\nfrom promptomatix.cli.app import main\nmain(sys.argv[1:])\n"
    env = {**__import__("os").environ, "PROMPTOMATIX_DEBUG": "1"}
    r = subprocess.run(
        [sys.executable, "-c", code, "models", "run", "nosuch", "x"], capture_output=True, text=True, env=env
    )
    assert "Traceback" in r.stderr
