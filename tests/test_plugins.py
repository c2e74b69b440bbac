"""Plugins in-process: the built-ins come through the hooks, a plugin object adds to every registry, broken plugins
are named (never silently dropped), and building the manager or listing plugins imports neither DSPy nor litellm."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types

import pytest

from promptomatix.config import RunConfig
from promptomatix.errors import ConfigurationError, ModelUnavailableError, PluginError
from promptomatix.lm.factory import create_client
from promptomatix.lm.types import Completion
from promptomatix.metrics import MetricsManager
from promptomatix.plugins import hookimpl
from promptomatix.plugins.manager import plugin_infos, reset_for_tests
from promptomatix.task import TaskSpec, TaskTypeDef, guess_task_type
from promptomatix.task.models import FieldSpec

ENV = {**os.environ, "PROMPTOMATIX_LOAD_PLUGINS": ""}


class Echo:
    def __init__(self, model: str) -> None:
        self.model = model

    def complete(self, messages, *, json_schema=None, max_tokens=None, temperature=None):
        return Completion(text=messages[-1]["content"], model=self.model)


def test_the_builtins_register_through_the_same_hooks():
    reset_for_tests()
    builtins = next(p for p in plugin_infos() if p.name == "promptomatix.builtins")
    from promptomatix.cli.plugins_cmd import plugin_report

    registered = next(p for p in plugin_report() if p["name"] == "promptomatix.builtins")["registered"]
    assert builtins is plugin_infos()[0]
    assert registered["backends"] == ["simple_meta_prompt", "dspy"]
    assert registered["models"] == ["local", "litellm"]
    assert registered["dspy_modules"] == ["predict", "cot", "pot", "react"]
    assert {"rewrite_from_failures", "compress"} <= set(registered["meta_prompts"])
    assert {"classification", "reasoning", "generation"} <= set(registered["task_types"])


def test_a_backend_typo_lists_the_registered_backends():
    with pytest.raises(ConfigurationError, match=r"unknown backend 'dspyy'.*did you mean dspy\?.*simple_meta_prompt"):
        RunConfig.from_kwargs(raw_input="x", backend="dspyy")
    assert RunConfig(backend="meta").backend == "simple_meta_prompt"  # aliases resolve


def test_a_plugin_backend_is_validated_built_and_estimated(with_plugin):
    from pydantic import BaseModel

    from promptomatix.backends.registry import BackendEntry, estimate_calls, make_backend

    class Settings(BaseModel):
        tries: int = 2

    class Mine:
        name = "mine"

        def __init__(self, settings):
            self.settings = settings

        def compile(self, ctx, initial, data):
            raise NotImplementedError

        def estimate_calls(self, n_train, n_valid):
            return self.settings.tries * n_valid

    plugin = types.SimpleNamespace(
        register_backends=hookimpl(lambda register: register(BackendEntry("mine", Settings, lambda s, cfg: Mine(s))))
    )
    with_plugin(plugin, "mine-plugin")
    cfg = RunConfig(raw_input="x", backend="mine", backend_options={"tries": 3})
    assert make_backend(cfg).settings.tries == 3
    assert estimate_calls(cfg, 10, 4) == 12
    with pytest.raises(ConfigurationError, match="invalid setting 'tries' for the mine backend"):
        make_backend(RunConfig(raw_input="x", backend="mine", backend_options={"tries": "many"}))


def test_a_plugin_task_type_is_scored_by_its_metric_and_guessed_first(with_plugin):
    def polite(example, pred):
        return (1.0 if "please" in pred["reply"].lower() else 0.25), "say please"

    politeness = TaskTypeDef(
        "politeness", aliases=("polite",), inputs=("request",), output="reply", metric=polite, keywords=("politely",)
    )
    plugin = types.SimpleNamespace(register_task_types=hookimpl(lambda register: register(politeness)))
    with_plugin(plugin, "polite-plugin")
    spec = TaskSpec(description="d", task_type="polite", input_fields=[FieldSpec(name="request")],
                    output_fields=[FieldSpec(name="reply")])  # fmt: skip
    assert spec.task_type == "politeness"  # the alias resolves
    mm = MetricsManager(output_fields=["reply"], lambda_penalty=0)
    assert mm.score("politeness", {"reply": "x"}, {"reply": "Please wait"}).score == 1.0
    assert mm.score("polite", {"reply": "x"}, {"reply": "Wait"}).score == 0.25
    # keyword guessing tries a plugin's types before the built-ins ("classify" would otherwise win)
    assert guess_task_type("Classify, then answer politely") == "politeness"
    from promptomatix.task.heuristics import default_fields

    assert [f.name for f in default_fields("politeness")[1]] == ["reply"]


def test_unknown_task_type_lists_the_registered_ones():
    from promptomatix.task.overrides import parse_task_type

    with pytest.raises(ConfigurationError, match="unknown task type 'tone'") as err:
        parse_task_type("tone")
    assert "classification" in (err.value.hint or "") and "register_task_types" in (err.value.hint or "")


def test_a_plugin_model_provider_serves_its_prefix_and_the_rest_is_unchanged(with_plugin):
    from promptomatix.lm.providers import ModelProvider

    plugin = types.SimpleNamespace(
        register_models=hookimpl(
            lambda register: register(ModelProvider("echo", lambda m, o: Echo(m), prefixes=("echo/",)))
        )
    )
    with_plugin(plugin, "echo-plugin")
    client = create_client("echo/any")
    from promptomatix.lm.guarded import PluginClient

    # the plugin's client, held to the client contract at the boundary (tests/test_plugins_contained.py)
    assert isinstance(client, PluginClient) and isinstance(client._inner, Echo) and client.model == "echo/any"
    assert client.complete([{"role": "user", "content": "hi"}]).text == "hi"
    assert type(create_client("openai/gpt-4o-mini", api_key="k")).__name__ == "RemoteClient"  # litellm fallback
    with pytest.raises(ModelUnavailableError, match="GGUF file not found"):
        create_client("local:/no/such/file.gguf")  # still the local provider, with its own error


def test_a_name_taken_twice_or_a_failing_hook_names_the_plugin(with_plugin):
    from promptomatix.backends.registry import BackendEntry, backend_registry
    from promptomatix.task.task_types import task_type_registry

    twice = types.SimpleNamespace(
        register_task_types=hookimpl(lambda register: register(TaskTypeDef("classification")))
    )
    with_plugin(twice, "dup-plugin")
    with pytest.raises(PluginError, match=r"plugin dup-plugin: task type 'classification' is already registered"):
        task_type_registry()

    def boom(register):
        raise RuntimeError("no config file")

    with_plugin(types.SimpleNamespace(register_backends=hookimpl(boom)), "boom-plugin")
    with pytest.raises(PluginError, match="plugin boom-plugin failed in register_backends: RuntimeError") as err:
        backend_registry()
    assert "PROMPTOMATIX_LOAD_PLUGINS" in (err.value.hint or "")
    assert BackendEntry  # the public type a plugin registers


def test_a_plugin_that_fails_to_import_is_reported_and_the_cli_still_works(tmp_path):
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[promptomatix]\nbroken = broken_plugin_module_that_is_missing\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("PROMPTOMATIX_LOAD_PLUGINS", None)
    out = subprocess.run([sys.executable, "-m", "promptomatix", "plugins", "--json"], env=env, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 1, out.stderr  # listed, and a non-zero exit CI can catch
    broken = next(p for p in json.loads(out.stdout) if p["name"] == "broken")
    assert broken["distribution"] == "broken-plugin" and "ModuleNotFoundError" in broken["error"]
    assert "Warning: plugin broken failed to load: ModuleNotFoundError" in out.stderr
    skipped = subprocess.run([sys.executable, "-m", "promptomatix", "plugins", "--json"], capture_output=True,
                             text=True, timeout=120, env={**env, "PROMPTOMATIX_LOAD_PLUGINS": ""})  # fmt: skip
    assert [p["name"] for p in json.loads(skipped.stdout)] == ["promptomatix.builtins"] and not skipped.stderr


def test_building_the_manager_and_listing_plugins_import_no_dspy_or_litellm():
    code = textwrap.dedent(
        """
        import sys
        import promptomatix.cli.app
        print(sorted(m for m in ("pydantic", "dspy", "litellm") if m in sys.modules))  # the CLI's startup
        from promptomatix.cli.plugins_cmd import plugin_report
        plugin_report()
        print(sorted(m for m in ("dspy", "litellm", "xllamacpp") if m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "[]"]


def test_feedback_added_is_a_run_event(with_plugin, tmp_path):
    from promptomatix.sessions import SessionStore
    from promptomatix.sessions.feedback import attach_feedback

    seen = []
    with_plugin(types.SimpleNamespace(on_run_event=hookimpl(lambda event: seen.append(event))), "listener")
    session = SessionStore(tmp_path).new_session(raw_input="Classify reviews")
    item = attach_feedback(session, comment="too vague")
    assert [(e.name, e.session_id, e.payload["comment"], e.payload["id"]) for e in seen] == [
        ("feedback_added", session.session_id, "too vague", item.id)
    ]


def test_a_plugin_meta_prompt_without_the_current_prompt_names_the_plugin(with_plugin):
    from promptomatix.backends.registry import make_backend

    plugin = types.SimpleNamespace(register_meta_prompts=hookimpl(lambda register: register("bad", "Improve it.")))
    with_plugin(plugin, "meta-plugin")
    with pytest.raises(PluginError, match="plugin meta-plugin: meta-prompt template 'bad' never shows the current"):
        make_backend(RunConfig(raw_input="Classify reviews"))
