"""Plugins that would take over or break what is ours (hostile review 13): an alias or a longer model prefix that
captures a built-in, a model client that raises or returns made-up counts, a `sys.exit` or a root callback in
`register_commands`, a print at import. Each is refused or contained with one line naming the plugin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
from pydantic import BaseModel

from promptomatix.errors import PluginError
from promptomatix.lm.factory import create_client
from promptomatix.plugins import hookimpl


def test_a_backend_alias_cannot_take_a_registered_backend(with_plugin):
    from promptomatix.backends.registry import BackendEntry, backend_registry

    entry = BackendEntry("mine", BaseModel, lambda settings, cfg: None, aliases=("simple_meta_prompt",))
    with_plugin(types.SimpleNamespace(register_backends=hookimpl(lambda register: register(entry))), "alias-plug")
    with pytest.raises(PluginError, match=r"plugin alias-plug: alias 'simple_meta_prompt' of backend 'mine' is"):
        backend_registry()  # it resolved `simple_meta_prompt` (the default) to the plugin's backend


def test_a_longer_model_prefix_cannot_take_a_built_in_providers_models(with_plugin):
    from promptomatix.lm.providers import ModelProvider

    shadow = ModelProvider("shadow", lambda m, o: None, prefixes=("local/s",))
    with_plugin(types.SimpleNamespace(register_models=hookimpl(lambda register: register(shadow))), "shadow-plug")
    with pytest.raises(PluginError, match=r"prefix 'local/s' of provider 'shadow' overlaps 'local/'"):
        create_client("local/smollm2-135m")  # it was served by the plugin: the default model captured


class _Client:
    def __init__(self, model: str, mode: str) -> None:
        self.model, self.mode = model, mode

    def complete(self, messages, **kwargs):
        from promptomatix.lm.types import Completion

        if self.mode == "raise":
            raise RuntimeError("provider exploded")
        if self.mode == "str":
            return '{"label": "positive"}'
        return Completion(text='{"label": "positive"}', cost_usd=-5.0)


@pytest.mark.parametrize(("mode", "says"), [
    ("raise", "failed in complete(): RuntimeError: provider exploded"),
    ("str", "returned str from complete(), not a Completion"),
    ("negcost", "returned cost_usd=-5.0; counts and cost must be finite numbers >= 0"),
])  # fmt: skip
def test_a_plugin_model_that_misbehaves_fails_the_run_naming_the_plugin(with_plugin, tmp_path, mode, says):
    from promptomatix import process_input
    from promptomatix.api import list_sessions
    from promptomatix.lm.providers import ModelProvider
    from tests.test_pipeline import GIVEN, TASK

    prov = ModelProvider("prov", lambda m, o: _Client(m, mode), prefixes=("prov/",))
    with_plugin(types.SimpleNamespace(register_models=hookimpl(lambda register: register(prov))), "prov-plug")
    with pytest.raises(PluginError) as e:
        process_input(human_input=TASK, sessions_dir=str(tmp_path / "s"), model_name="prov/x",
                      teacher_model="prov/t", **GIVEN)  # fmt: skip
    assert e.value.message == f"plugin prov-plug: model provider 'prov' {says}" and e.value.plugin == "prov-plug"
    # a negative cost made the failure path itself crash: the session was left `running` (then listed as stale)
    (s,) = list_sessions(sessions_dir=str(tmp_path / "s"))
    assert s.status == "failed"


def _install(root: Path, name: str, code: str) -> None:
    (root / f"{name}_plugin.py").write_text(textwrap.dedent(code))
    dist = root / f"{name}_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[promptomatix]\n{name} = {name}_plugin\n")


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root), "PROMPTOMATIX_SESSIONS_DIR": str(root / "s")}
    env.pop("PROMPTOMATIX_LOAD_PLUGINS", None)
    return subprocess.run([sys.executable, "-m", "promptomatix", *args], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_register_commands_cannot_exit_the_cli_or_replace_its_root_options(tmp_path):
    _install(tmp_path, "exiter", """
        import sys
        from promptomatix.plugins import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command("half")
            def half():
                pass
            sys.exit("exiter needs ~/.exiter")
        """)  # fmt: skip
    _install(tmp_path, "rooter", """
        from promptomatix.plugins import hookimpl

        print("rooter loaded")  # at import: must not land on stdout before a --json document

        @hookimpl
        def register_commands(cli):
            @cli.command("hello")
            def hello():
                print("hello from rooter")

            @cli.callback()
            def root():
                "the plugin's root"
        """)  # fmt: skip
    helped = _cli(tmp_path, "--help")
    assert helped.returncode == 0 and "optimize" in helped.stdout  # SystemExit took --help (and all else) down
    assert "plugin exiter could not add its commands: SystemExit: exiter needs ~/.exiter" in helped.stderr
    assert "half" not in helped.stdout  # what it added before it exited is taken back
    assert "plugin rooter tried to replace the root command's options; ignored" in helped.stderr
    version = _cli(tmp_path, "--version")
    assert version.returncode == 0 and version.stdout.strip()  # was "No such option: --version"
    listed = _cli(tmp_path, "sessions", "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == [] and "rooter loaded" in listed.stderr
    assert _cli(tmp_path, "hello").stdout.strip() == "hello from rooter"  # its own command still works


def test_a_metric_for_a_task_type_nobody_registered_is_refused_naming_the_near_miss(with_plugin):
    from promptomatix.metrics.registry import plugin_metric_registry

    plugin = types.SimpleNamespace(register_metrics=hookimpl(lambda register: register("clasification", len)))
    with_plugin(plugin, "typo-plug")
    with pytest.raises(PluginError, match=r"plugin typo-plug: metric for task type 'clasification': no such") as e:
        plugin_metric_registry()  # was accepted, listed, and never used
    assert "did you mean 'classification'?" in (e.value.hint or "")


def test_a_broken_backend_plugin_is_exit_1_naming_it_not_a_usage_error(with_plugin, capsys, tmp_path):
    from promptomatix.backends.registry import BackendEntry
    from promptomatix.cli.app import main

    entry = BackendEntry("mine", BaseModel, lambda settings, cfg: None, aliases=("simple_meta_prompt",))
    with_plugin(types.SimpleNamespace(register_backends=hookimpl(lambda register: register(entry))), "alias-plug")
    with pytest.raises(SystemExit) as e:
        main(["optimize", "Classify reviews", "--sessions-dir", str(tmp_path), "--json"])
    err = capsys.readouterr().err
    assert e.value.code == 1 and "plugin alias-plug:" in err  # was exit 2, "invalid backend ... (check the value)"


def test_a_plugin_client_can_be_copied():
    import copy

    from promptomatix.lm.guarded import PluginClient

    client = PluginClient(_Client("prov/x", "ok"), "prov-plug", "prov")
    assert copy.copy(client).model == "prov/x"  # was RecursionError (__getattr__ before _inner was set)
