"""The optimize report prints prompts that models and users wrote: an escape sequence in them (`ESC]0;…BEL` sets the
terminal's title, `ESC[1A` rewrites lines above) must show as text, as `sessions show` already does."""

from __future__ import annotations

from tests.test_cli_run import cli, env  # noqa: F401  (env is a fixture)

TITLE = "\x1b]0;pwned\x07"


def test_the_optimize_report_shows_control_characters_escaped(env):  # noqa: F811
    r = cli(env, "optimize", f"Classify the sentiment{TITLE} of a movie review", "--data", env["DATA"])
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
    assert "\\x1b]0;pwned\\x07" in r.stdout  # still there for the user to see


def test_a_windows_line_end_prints_as_a_line_end():
    """CSV values from Windows files end lines in CRLF: every line of a dry run's rows printed a visible \\x0d."""
    from promptomatix.cli.render import visible

    assert visible("great film\r\nloved it\rx\x1b") == "great film\nloved it\\x0dx\\x1b"
