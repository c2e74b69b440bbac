"""Hostile review 19 of the plugin extension points: a CLI group named on its own Typer replaced `models`, a plugin
could remove or edit built-in commands; a subscriber's sys.exit() ended the run; `trylast` let a plugin take the
built-ins' names; a healthy plugin was marked failed for another's error; an unpinned plugin meta-prompt was never
used; `--help` got slow with a broken plugin or the example one; a crashing plugin command was an "unexpected error";
a misspelled PROMPTOMATIX_LOAD_PLUGINS name was silent; two entry points for one module gave a 433-char message."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from promptomatix.errors import PluginError
from promptomatix.plugins import hookimpl

ROOT = Path(__file__).resolve().parents[1]


def _install(root: Path, name: str, code: str, *, module: str | None = None, dist: str | None = None) -> None:
    """A plugin on `root` (put on PYTHONPATH): its module (unless `module` names one already there) and a
    dist-info whose entry point `name` points at it."""
    target = module or f"{name}_plugin"
    if module is None:
        (root / f"{target}.py").write_text(textwrap.dedent(code))
    dist = dist or f"{name}-plugin"
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[promptomatix]\n{name} = {target}\n")


def _run(paths: list[Path], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, paths)),
            "PROMPTOMATIX_SESSIONS_DIR": str(paths[0] / "s"), **env}  # fmt: skip
    if "PROMPTOMATIX_LOAD_PLUGINS" not in env:
        full.pop("PROMPTOMATIX_LOAD_PLUGINS", None)
    return subprocess.run([sys.executable, *args], env=full, capture_output=True, text=True, timeout=120)


def _cli(paths: list[Path], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return _run(paths, "-m", "promptomatix", *args, **env)


HOSTILE_CLI = """
    import typer
    from promptomatix.plugins import hookimpl

    @hookimpl
    def register_commands(cli):
        models = typer.Typer(name="models", help="HIJACKED models group")  # the name on the Typer, not add_typer

        @models.command("list")
        def hijacked_list():
            typer.echo("HIJACKED")

        cli.add_typer(models)
        cli.registered_commands[:] = []  # would remove `optimize` and every other built-in command
        for group in list(cli.registered_groups):  # would edit `sessions list` in place
            group.typer_instance.registered_commands.clear()

        @cli.command("r19-dup")
        def first():
            typer.echo("first")

        @cli.command("r19-dup")
        def second():
            typer.echo("second")

        @cli.command("r19-crash")
        def crash():
            raise RuntimeError("command boom")

    @hookimpl(trylast=True, specname="register_commands")
    def register_commands_late(cli):  # trylast ran it before the built-ins: `optimize` was free to take
        @cli.command("optimize")
        def optimize():
            typer.echo("HIJACKED optimize")
"""


@pytest.fixture(scope="module")
def hostile_cli(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("r19cli")
    _install(root, "r19cli", HOSTILE_CLI)
    return root


def test_a_plugin_cannot_replace_remove_or_edit_a_built_in_command(hostile_cli):  # F4, F6 (commands)
    helped = _cli([hostile_cli], "--help")
    assert helped.returncode == 0, helped.stderr
    assert "HIJACKED" not in helped.stdout and "optimize" in helped.stdout and "sessions" in helped.stdout
    assert "plugin r19cli tried to replace the command 'models'; ignored" in helped.stderr
    assert "plugin r19cli tried to replace the command 'optimize'; ignored" in helped.stderr
    assert "plugin r19cli registered the command 'r19-dup' twice; the second one is ignored" in helped.stderr
    listed = _cli([hostile_cli], "sessions", "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []  # the built-in group, unedited
    assert _cli([hostile_cli], "r19-dup").stdout.strip() == "first"
    report = json.loads(_cli([hostile_cli], "plugins", "--json").stdout)
    mine = next(p for p in report if p["name"] == "r19cli")
    assert mine["error"] is None and mine["registered"] == {"commands": ["r19-dup", "r19-crash"]}


def test_a_plugin_command_that_raises_is_one_line_naming_the_plugin(hostile_cli):  # F15
    out = _cli([hostile_cli], "r19-crash")
    assert out.returncode == 1
    line = "Error: plugin r19cli: command 'r19-crash' failed: RuntimeError: command boom (fix or uninstall the plugin"
    (error,) = [e for e in out.stderr.splitlines() if not e.startswith("Warning: plugin r19cli")]  # its refusals
    assert error.startswith(line) and "unexpected error" not in error


def test_a_misspelled_plugin_name_to_load_is_a_warning_naming_the_installed_ones(hostile_cli):  # F16
    out = _cli([hostile_cli], "plugins", "--json", PROMPTOMATIX_LOAD_PLUGINS="r19clii")
    assert out.returncode == 0 and [p["name"] for p in json.loads(out.stdout)] == ["promptomatix.builtins"]
    warning = "Warning: PROMPTOMATIX_LOAD_PLUGINS names 'r19clii', which no installed plugin has (installed plugins: "
    assert warning in out.stderr and re.search(r"installed plugins: [^)]*\br19cli\b", out.stderr)
    assert out.stderr.count("\n") == 1


def test_two_entry_points_for_one_module_load_it_once_and_say_which(tmp_path):  # F17
    _install(tmp_path, "r19one", """
        from promptomatix.plugins import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command("r19-one")
            def one():
                print("one")
        """)  # fmt: skip
    _install(tmp_path, "r19again", "", module="r19one_plugin", dist="r19-other")
    out = _cli([tmp_path], "plugins", "--json")
    assert out.returncode == 1, out.stderr  # one of them failed
    mine = {p["name"]: p for p in json.loads(out.stdout) if p["name"] in ("r19one", "r19again")}
    (failed,) = [p for p in mine.values() if p["error"]]  # which one loads first is the path's order
    (loaded,) = [p for p in mine.values() if not p["error"]]
    assert failed["error"] == (f"its module r19one_plugin is already loaded as entry point {loaded['name']} "
                               f"(from {loaded['distribution']}); remove one of them")  # fmt: skip
    assert loaded["registered"] == {"commands": ["r19-one"]} and failed["registered"] == {}
    (warning,) = [line for line in out.stderr.splitlines() if "already loaded" in line]
    assert len(warning) < 300  # was pluggy's 433 characters of module reprs


def test_help_with_a_broken_or_the_example_plugin_imports_no_pydantic(tmp_path):  # F12
    _install(tmp_path, "r19broken", "raise RuntimeError('boom at import')\n")
    _install(tmp_path, "example", "", module="promptomatix_example_plugin", dist="promptomatix-example-plugin")
    code = ("import sys\nimport promptomatix.cli.app\n"
            "print(sorted(m for m in ('pydantic', 'promptomatix.sessions.models') if m in sys.modules))")  # fmt: skip
    out = _run([tmp_path, ROOT / "examples" / "plugin_example"], "-c", code)
    assert out.returncode == 0, out.stderr
    assert "Warning: plugin r19broken failed to load: RuntimeError: boom at import (fix" in out.stderr
    assert "plugin example" not in out.stderr  # it loaded
    assert out.stdout.split() == ["[]"]


@pytest.mark.parametrize("text", [
    "RuntimeError: bad key sk-abcdefghijklmnopqrstuvwx",
    "ValueError: cannot reach https://user:hunter2pass@example.com/v1",
    "RuntimeError: Authorization: Bearer abcdefghijklmnop",
    "RuntimeError: token R19SECRETVALUE123 refused",
])  # fmt: skip
def test_the_startup_warning_line_is_scrubbed_like_every_error_line(text, monkeypatch):  # F12 (kept safe)
    from promptomatix.plugins.commands import startup_line
    from promptomatix.run_guard import one_line

    monkeypatch.setenv("R19_API_KEY", "R19SECRETVALUE123")
    assert startup_line(text) == one_line(text) and ("hunter2" not in startup_line(text))
    assert startup_line("ModuleNotFoundError:  No module\n named 'x'") == "ModuleNotFoundError: No module named 'x'"


def test_a_subscriber_that_calls_sys_exit_is_logged_and_the_run_goes_on(with_plugin, tmp_path, caplog):  # F5
    from tests.test_pipeline import run

    def leave(event):
        if event.name in ("run_started", "run_finished"):
            sys.exit(4)

    with_plugin(types.SimpleNamespace(on_run_event=hookimpl(leave)), "exit-plug")
    with caplog.at_level(logging.WARNING, logger="promptomatix.plugins.events"):
        result = run(tmp_path)  # the caller's process exited with code 4
    session = json.loads((tmp_path / "s" / result.session_id / "session.json").read_text())
    assert session["status"] == "completed" and len(session["versions"]) == 1
    said = [r.getMessage() for r in caplog.records if "exit-plug" in r.getMessage()]
    assert said == ["plugin exit-plug failed on run_started: it called sys.exit(4), which was ignored"]


def test_trylast_does_not_let_a_plugin_take_the_built_ins_names(with_plugin):  # F6
    from promptomatix.lm.providers import ModelProvider
    from promptomatix.plugins.report import plugin_report
    from promptomatix.task import TaskTypeDef
    from promptomatix.task.task_types import task_type_registry

    mine = TaskTypeDef("classification", inputs=("text",), output="label", metric=lambda e, p: 1.0, labels="single")
    local = ModelProvider("local", lambda m, o: None, prefixes=("local/",))
    plugin = types.SimpleNamespace(register_task_types=hookimpl(trylast=True)(lambda register: register(mine)),
                                   register_models=hookimpl(trylast=True)(lambda register: register(local)))  # fmt: skip
    with_plugin(plugin, "late-plug")
    with pytest.raises(PluginError) as e:
        task_type_registry()
    assert e.value.plugin == "late-plug"
    assert e.value.message.startswith("plugin late-plug: task type 'classification' is already registered by prom")
    report = {p["name"]: p for p in plugin_report()}
    assert report["promptomatix.builtins"]["error"] is None and "late-plug" in report["late-plug"]["error"]
    assert report["promptomatix.builtins"]["registered"]["models"] == ["local", "litellm"]


def test_another_plugins_error_is_not_blamed_on_a_healthy_plugin(with_plugin):  # F7
    from promptomatix.plugins.report import plugin_report

    wrong = types.SimpleNamespace(register_task_types=hookimpl(lambda register: register({"name": "x"})))
    healthy = types.SimpleNamespace(register_metrics=hookimpl(lambda register: register("classification", min)))
    with_plugin(wrong, "wrong-plug")
    with_plugin(healthy, "healthy-plug")
    errors = {p["name"]: p["error"] for p in plugin_report()}
    assert errors["healthy-plug"] is None
    assert errors["wrong-plug"] == "plugin wrong-plug: register_task_types expects a TaskTypeDef, got dict"


TERSE = 'R19-TERSE. Make this prompt for $task shorter:\n$current_prompt\nReply as JSON {"prompt": "..."}.'


def test_an_unpinned_plugin_meta_prompt_takes_a_slot_in_round_one(with_plugin):  # F10
    from promptomatix.backends.meta import DEFAULT_STRATEGIES
    from promptomatix.backends.meta_loop import _round_strategies
    from promptomatix.backends.registry import make_backend
    from promptomatix.config import RunConfig

    assert make_backend(RunConfig(raw_input="Classify reviews")).settings.strategies == list(DEFAULT_STRATEGIES)
    plugin = types.SimpleNamespace(register_meta_prompts=hookimpl(lambda register: register("r19_terse", TERSE)))
    with_plugin(plugin, "terse-plug")
    for search in ("quick", "moderate"):
        settings = make_backend(RunConfig(raw_input="Classify reviews", search_type=search)).settings
        assert _round_strategies(settings, 1)[:2] == ["add_demos", "r19_terse"]
        assert [n for n in settings.strategies if n != "r19_terse"] == list(DEFAULT_STRATEGIES)  # order kept
    own = RunConfig(raw_input="Classify reviews", backend_options={"strategies": ["rephrase"]})
    assert make_backend(own).settings.strategies == ["rephrase", "r19_terse"]  # the user's rotation, then it


def test_a_default_run_proposes_from_the_unpinned_plugin_meta_prompt(with_plugin, tmp_path):  # F10, end to end
    from tests.test_pipeline import run

    plugin = types.SimpleNamespace(register_meta_prompts=hookimpl(lambda register: register("r19_terse", TERSE)))
    with_plugin(plugin, "terse-plug")
    result = run(tmp_path)
    session = json.loads((tmp_path / "s" / result.session_id / "session.json").read_text())
    assert "r19_terse" in {c["origin"] for c in session["versions"][-1]["candidates"]}


@pytest.mark.parametrize("marker", [{"hookwrapper": True}, {"wrapper": True}, {}])
def test_a_register_hook_that_never_runs_its_body_is_an_error_naming_the_plugin(with_plugin, marker):
    """A `hookwrapper=True` (or `wrapper=True`) register hook, or one written with `yield`, was called, built a
    generator and registered nothing, without a word: `--task-type mytype` then said "unknown task type"."""
    from promptomatix.task import TaskTypeDef
    from promptomatix.task.task_types import task_type_registry

    mine = TaskTypeDef("wrapped", inputs=("text",), output="label", metric=lambda e, p: 1.0, labels="single")

    def register_task_types(register):
        register(mine)
        yield

    with_plugin(types.SimpleNamespace(register_task_types=hookimpl(**marker)(register_task_types)), "wrap-plug")
    with pytest.raises(PluginError) as e:
        task_type_registry()
    assert e.value.plugin == "wrap-plug" and "register_task_types" in e.value.message
    assert "never" in e.value.message and e.value.hint
