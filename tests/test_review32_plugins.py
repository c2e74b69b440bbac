"""Review 32 (plugins): what a plugin receives carries no credentials, a built-in strategy's name is not a plugin's
to take, a plugin task model's failure is named, an invalid template or strategy name fails before any call, and
what a plugin serves is shown."""

from __future__ import annotations

import types

import pytest

from promptomatix.errors import PluginError
from promptomatix.plugins import hookimpl
from tests.test_pipeline import SECRET, run

PROXY = "https://bob:HUNTER2PASS@proxy.example/v1?api_key=QQQSECRETQQQ"


class Events:
    def __init__(self) -> None:
        self.events: list = []

    @hookimpl
    def on_run_event(self, event):
        self.events.append(event)


def test_run_events_carry_no_credentials_from_the_api_base_urls(tmp_path, with_plugin):
    seen = Events()
    with_plugin(seen, "events-plug")
    run(tmp_path, api_key=SECRET, api_base=PROXY, teacher_api_base="http://bob:HUNTER2PASS@teacher.example:8000/v1")
    assert seen.events and seen.events[0].name == "run_started"
    text = "".join(e.model_dump_json() for e in seen.events)
    for secret in ("HUNTER2PASS", "QQQSECRETQQQ", SECRET):
        assert secret not in text
    config = seen.events[0].payload["config"]
    assert config["api_base"] == "https://proxy.example/v1" and "teacher.example:8000" in config["teacher_api_base"]


def _meta_prompt_plugin(name: str, text: str) -> types.SimpleNamespace:
    return types.SimpleNamespace(register_meta_prompts=hookimpl(lambda register: register(name, text)))


@pytest.mark.parametrize("name", ["add_demos", "drop_line", "combine", "format_line", "rephrase"])
def test_a_plugin_template_cannot_take_a_built_in_strategys_name(with_plugin, name):
    from promptomatix.backends.meta_prompts import meta_prompt_registry

    with_plugin(_meta_prompt_plugin(name, 'HIJACK $current_prompt Reply as JSON {"prompt": "..."}'), "clash-plug")
    with pytest.raises(PluginError, match=rf"^plugin clash-plug: meta-prompt '{name}' is .*built-in") as e:
        meta_prompt_registry()
    assert "another name" in e.value.hint


def test_the_strategy_registry_refuses_a_second_strategy_under_a_name():
    from promptomatix.backends.strategies import StrategyRegistry, TemplateStrategy
    from promptomatix.errors import ConfigurationError

    reg = StrategyRegistry.default()
    with pytest.raises(ConfigurationError, match="'add_demos' is already registered"):
        reg.register(TemplateStrategy("add_demos", "X $current_prompt"))
    assert type(reg.get("add_demos")).__name__ == "DemoStrategy"


def test_two_meta_prompt_files_with_one_name_both_run(tmp_path):
    from promptomatix.backends.strategies import StrategyRegistry

    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "mine.txt").write_text(f"{d}: better $current_prompt")
    reg = StrategyRegistry.default()
    names = [reg.register_template_file(tmp_path / d / "mine.txt") for d in ("a", "b")]
    assert names == ["user:mine", "user:mine-2"]


def test_a_plugin_template_without_the_current_prompt_is_refused_when_registered(with_plugin):
    from promptomatix.cli.plugins_cmd import plugin_report

    with_plugin(_meta_prompt_plugin("no_current", "Improve the prompt. Reply as JSON."), "badtpl-plug")
    report = {p["name"]: p for p in plugin_report()}
    assert report["badtpl-plug"]["error"].startswith("plugin badtpl-plug: meta-prompt template 'no_current' never")


def test_a_strategy_typo_fails_the_dry_run_before_any_call(tmp_path):
    from promptomatix.errors import ConfigurationError
    from tests.test_pipeline import fakes

    clients, task, teacher = fakes()
    with pytest.raises(ConfigurationError, match="unknown meta-prompt strategy 'rephrse'") as e:
        run(tmp_path, clients=clients, dry_run=True, backend_options={"strategies": ["rephrse"]})
    assert "did you mean 'rephrase'?" in e.value.hint and task.n == 0 and teacher.n == 0


class _Down:
    model = "md/x"

    def __init__(self, answer=None) -> None:
        self.answer = answer

    def complete(self, messages, **kw):
        if self.answer is None:
            raise ConnectionError("server down")
        return self.answer


@pytest.mark.parametrize("answer, cause", [(None, "ConnectionError: server down"), ("yes", "returned str")])
def test_a_plugin_task_models_failure_is_the_cause_the_run_gives(answer, cause):
    from promptomatix.lm.boundary import LMBoundary
    from promptomatix.lm.guarded import PluginClient
    from promptomatix.run_guard import require_task_answered

    boundary = LMBoundary({"task": PluginClient(_Down(answer), "md-plug", "md")})
    for i in range(3):
        with pytest.raises(PluginError):
            boundary.complete("task", [{"role": "user", "content": f"q{i}"}])
    with pytest.raises(Exception, match=rf"all 3 task calls .* plugin md-plug: model provider 'md' .*{cause}") as e:
        require_task_answered(boundary)
    assert "no error was recorded" not in str(e.value) and "uninstall the plugin" in str(e.value)


def test_a_task_type_alias_that_a_built_in_type_has_is_refused(with_plugin):
    from promptomatix.task import TaskTypeDef
    from promptomatix.task.task_types import task_type_registry

    clash = TaskTypeDef("mymath", aliases=("Math Problems", "math"))
    with_plugin(types.SimpleNamespace(register_task_types=hookimpl(lambda register: register(clash))), "alias-plug")
    with pytest.raises(PluginError, match=r"plugin alias-plug: alias 'math' of task type 'mymath' is already an alias"
                                          r" of task type 'reasoning' \(promptomatix.builtins\)"):  # fmt: skip
        task_type_registry()


def test_a_plugin_serving_litellm_model_strings_is_shown_in_the_listing_and_the_run(with_plugin):
    from promptomatix.cli.plugins_cmd import plugin_report
    from promptomatix.lm.factory import create_client
    from promptomatix.lm.providers import ModelProvider

    proxy = ModelProvider("proxy", lambda model, options: _Down("yes"), prefixes=("openai/",), matches=lambda m: False)
    with_plugin(types.SimpleNamespace(register_models=hookimpl(lambda register: register(proxy))), "proxy-plug")
    report = {p["name"]: p for p in plugin_report()}
    assert report["proxy-plug"]["model_prefixes"] == ["openai/", "<matcher>"]
    assert "<fallback>" in report["promptomatix.builtins"]["model_prefixes"]
    said: list[str] = []
    create_client("openai/gpt-4o-mini", api_key="k", on_message=said.append)
    assert said == ["openai/gpt-4o-mini is served by plugin proxy-plug (its model provider 'proxy')"]


def test_a_slow_plugin_import_is_named_on_stderr_not_in_help(tmp_path):
    import os
    import subprocess
    import sys

    hook = "from promptomatix.plugins import hookimpl\n\n@hookimpl\ndef on_run_event(event):\n    pass\n"
    (tmp_path / "slow_plug.py").write_text("import time\ntime.sleep(0.4)\n" + hook)
    dist = tmp_path / "slow_plug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: slow-plug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[promptomatix]\nslow = slow_plug\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("PROMPTOMATIX_LOAD_PLUGINS", None)
    out = subprocess.run([sys.executable, "-m", "promptomatix", "--help"], env=env, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 0 and "slow" not in out.stdout
    (line,) = [x for x in out.stderr.splitlines() if "slow" in x]
    assert line.startswith("Warning: plugin slow took 0.") and "s to import" in line


def test_a_plugin_with_no_hook_is_a_warning_and_a_broken_one_fails_the_listing(tmp_path):
    import os
    import subprocess
    import sys

    sources = {"nohooks": "def register_backends(register):\n    pass\n",  # no @hookimpl: registers nothing
               "tplbad": "from promptomatix.plugins import hookimpl\n\n@hookimpl\ndef register_meta_prompts(register):"
                         "\n    register('mine', 'no placeholder here')\n"}  # fmt: skip
    for name, code in sources.items():
        (tmp_path / f"{name}_plug.py").write_text(code)
        dist = tmp_path / f"{name}_plug-0.1.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}-plug\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text(f"[promptomatix]\n{name} = {name}_plug\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("PROMPTOMATIX_LOAD_PLUGINS", None)

    def plugins(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "promptomatix", "plugins"], env={**env, **extra},
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    out = plugins()
    assert out.returncode == 1 and "tplbad" in out.stdout
    assert "Warning: plugin nohooks implements no promptomatix hook, so it registers nothing" in out.stderr
    assert plugins(PROMPTOMATIX_LOAD_PLUGINS="nohooks").returncode == 0
