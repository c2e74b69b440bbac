"""`promptomatix ui` refuses what it cannot serve with one line naming the fix: a port in use, an address this
machine does not have, a sessions dir that is a file (it used to print "unexpected error: OSError", or to start and
fail on every page)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")


def run_ui(*args: str) -> subprocess.CompletedProcess[str]:
    code = f"from promptomatix.cli.app import main; main(['ui', *{list(args)!r}])"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def one_error_line(r: subprocess.CompletedProcess[str]) -> str:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and r.stdout == "" and len(lines) == 1, (r.returncode, r.stdout, r.stderr)
    assert lines[0].startswith("Error: ") and "unexpected" not in lines[0]
    return lines[0]


def test_a_port_in_use_names_another_port(tmp_path):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        line = one_error_line(run_ui("--port", str(port), "--sessions-dir", str(tmp_path / "sessions")))
    assert f"port {port} is in use" in line and "--port 0" in line


def test_an_address_this_machine_lacks_names_the_host_flag(tmp_path):
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): documentation only, never assigned to a machine
    line = one_error_line(run_ui("--host", "192.0.2.1", "--allow-remote", "--port", "0",
                                 "--sessions-dir", str(tmp_path / "sessions")))  # fmt: skip
    assert "cannot bind 192.0.2.1: it is not an address of this machine" in line and "--host 127.0.0.1" in line


def test_a_sessions_dir_that_is_a_file_is_refused_before_serving(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a directory\n")
    line = one_error_line(run_ui("--port", "0", "--sessions-dir", str(a_file)))
    assert f"the sessions dir {a_file} is a file, not a directory" in line and "--sessions-dir DIR" in line
    line = one_error_line(run_ui("--port", "0", "--sessions-dir", str(a_file / "sessions")))
    assert f"cannot be made: {a_file} is a file" in line
