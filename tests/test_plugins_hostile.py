"""Plugins that misbehave: each is refused or contained with one line naming it, and never takes over a built-in
(found by a hostile review: an alias hijacked `classification`, a command replaced `optimize`, an empty model
prefix served every model, a `sys.exit` at import killed `--help`, a misspelled hook registered nothing silently,
a failing event subscriber printed a line per candidate)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import types

import pytest
from pydantic import BaseModel

from promptomatix.errors import PluginError
from promptomatix.lm.factory import create_client
from promptomatix.plugins import hookimpl
from promptomatix.plugins.events import emit
from promptomatix.task import TaskTypeDef


def test_an_alias_cannot_take_a_built_in_task_types_name(with_plugin):
    from promptomatix.task.task_types import task_type_registry

    clash = TaskTypeDef("weird", aliases=("classification",))
    with_plugin(types.SimpleNamespace(register_task_types=hookimpl(lambda register: register(clash))), "alias-plug")
    with pytest.raises(PluginError, match=r"plugin alias-plug: alias 'classification' of task type 'weird' is the"):
        task_type_registry()


def test_an_empty_model_prefix_is_refused(with_plugin):
    from promptomatix.lm.providers import ModelProvider

    every = ModelProvider("every", lambda m, o: None, prefixes=("",))
    with_plugin(types.SimpleNamespace(register_models=hookimpl(lambda register: register(every))), "prefix-plug")
    with pytest.raises(PluginError, match="empty prefix, which would serve every model"):
        create_client("openai/gpt-4o-mini", api_key="k")


def test_a_failing_subscriber_warns_once_per_run(with_plugin, caplog):
    def listener(event):
        raise RuntimeError("webhook down")

    with_plugin(types.SimpleNamespace(on_run_event=hookimpl(listener)), "noisy-plug")
    with caplog.at_level(logging.DEBUG, logger="promptomatix.plugins.events"):
        for _ in range(5):
            emit("candidate_scored", "20990101-000000-aaaaaa")
        emit("candidate_scored", "20990101-000000-bbbbbb")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("noisy-plug failed on candidate_scored" in r.getMessage() for r in warnings)


PLUGINS = {
    "exits": "import sys\nsys.exit('exits_plugin needs FOO_API_KEY')\n",
    "typo": textwrap.dedent(
        """
        from promptomatix.plugins import hookimpl

        @hookimpl
        def register_backend(register):  # the hook is register_backends
            pass
        """
    ),
    "takeover": textwrap.dedent(
        """
        from promptomatix.plugins import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command("optimize")
            def optimize():
                print("not ours")

            @cli.command("hello")
            def hello():
                print("hello from the plugin")
        """
    ),
}


def test_broken_plugins_are_named_and_never_replace_a_built_in_command(tmp_path):
    for name, code in PLUGINS.items():
        (tmp_path / f"{name}_plugin.py").write_text(code)
        dist = tmp_path / f"{name}_plugin-0.1.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}-plugin\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text(f"[promptomatix]\n{name} = {name}_plugin\n")
    twin = tmp_path / "twin_plugin-0.1.dist-info"  # a second distribution whose entry point name is taken
    twin.mkdir()
    (twin / "METADATA").write_text("Metadata-Version: 2.1\nName: twin-plugin\nVersion: 0.1\n")
    (twin / "entry_points.txt").write_text("[promptomatix]\ntakeover = takeover_plugin\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("PROMPTOMATIX_LOAD_PLUGINS", None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "promptomatix", *args], env=env, capture_output=True, text=True,
                              timeout=120)  # fmt: skip

    out = cli("plugins", "--json")
    assert out.returncode == 1, out.stderr  # broken plugins listed, then exit 1
    errors = {p["name"]: p["error"] for p in json.loads(out.stdout)}
    assert "SystemExit" in errors["exits"] and "register_backend" in errors["typo"] and not errors["takeover"]
    (dropped,) = [e for k, e in errors.items() if k.startswith("takeover (")]  # was dropped without a word
    assert re.search(r"its name .takeover. is taken by (twin|takeover)-plugin; rename this entry point", dropped)
    assert "plugin takeover tried to replace the command 'optimize'; ignored" in out.stderr
    assert out.stderr.count("plugin exits failed to load") == 1 and "PROMPTOMATIX_LOAD_PLUGINS" in out.stderr
    helped = cli("optimize", "--help")
    assert helped.returncode == 0 and "--max-calls" in helped.stdout  # still ours
    assert cli("hello").stdout.strip() == "hello from the plugin"  # a new name is the plugin's to take


def test_the_plugins_report_lists_every_plugin_with_the_broken_one_marked(with_plugin):
    from promptomatix.backends.registry import BackendEntry
    from promptomatix.cli.plugins_cmd import plugin_report

    dup = BackendEntry("dspy", BaseModel, lambda settings, cfg: None)  # the built-in's name
    with_plugin(types.SimpleNamespace(register_backends=hookimpl(lambda register: register(dup))), "dup-plug")
    report = {p["name"]: p for p in plugin_report()}
    assert "promptomatix.builtins" in report and report["promptomatix.builtins"]["registered"]["backends"]
    assert report["dup-plug"]["error"].startswith("plugin dup-plug:")


def test_a_plugin_backend_or_model_that_fails_names_the_plugin(with_plugin):
    from promptomatix.backends.registry import BackendEntry, compile_backend, estimate_calls, make_backend
    from promptomatix.config import RunConfig
    from promptomatix.lm.providers import ModelProvider

    class Broken:
        def compile(self, ctx, initial, data):
            return None  # not a BackendResult

        def estimate_calls(self, n_train, n_valid):
            return "lots"

    def build(settings, cfg):
        if cfg.seed == 1:
            raise RuntimeError("no config file")
        return Broken()

    class Settings(BaseModel):
        tries: int = 1

    entry = BackendEntry("broken", Settings, build)
    none = ModelProvider("none", lambda model, options: None, prefixes=("none/",))
    plugin = types.SimpleNamespace(register_backends=hookimpl(lambda register: register(entry)),
                                   register_models=hookimpl(lambda register: register(none)))  # fmt: skip
    with_plugin(plugin, "bad-plug")
    cfg = RunConfig(raw_input="x", backend="broken")
    with pytest.raises(PluginError, match=r"plugin bad-plug: backend 'broken' build failed: RuntimeError: no config"):
        make_backend(cfg.model_copy(update={"seed": 1}))
    with pytest.raises(PluginError, match="compile returned NoneType, not a BackendResult") as e:
        compile_backend(cfg, make_backend(cfg), None, None, None)
    assert e.value.plugin == "bad-plug"
    with pytest.raises(PluginError, match=r"plugin bad-plug: backend 'broken' call estimate failed: ValueError"):
        estimate_calls(cfg, 4, 4)
    with pytest.raises(PluginError, match=r"model provider 'none' .* returned NoneType for 'none/x'"):
        create_client("none/x")


def test_a_plugin_metric_that_is_not_callable_fails_the_run_before_any_call(with_plugin, tmp_path):
    from tests.test_pipeline import fakes, run

    plugin = types.SimpleNamespace(register_metrics=hookimpl(lambda register: register("classification", 42)))
    with_plugin(plugin, "metric-plug")
    clients, task, teacher = fakes()
    with pytest.raises(PluginError, match="plugin metric-plug: metric for task type 'classification' is not callable"):
        run(tmp_path, clients=clients)
    assert task.n == 0 and teacher.n == 0
