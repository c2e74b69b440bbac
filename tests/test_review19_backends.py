"""Plugin extension points a hostile third-party plugin could abuse (review 19): a TaskTypeDef with a metric that is
not callable (found after the whole search), a backend's BackendResult with NaN scores or a prompt it never scored,
a plugin metric silently replacing the built-in one, a backend build or a `--backend-option` checked only after
the spec and the data were paid for, a predictor's failure blamed on the task model, a misspelled backend option
ignored, and a provider matcher that raises reported as "unexpected error". Each is one line naming the plugin."""

from __future__ import annotations

import math
import types
from typing import Any

import pytest
from pydantic import BaseModel

from promptomatix.errors import ModelUnavailableError, PluginError, UsageError
from promptomatix.plugins import hookimpl
from promptomatix.task import TaskTypeDef


def _two(example: Any, pred: Any) -> float:
    return 1.0


# -- F1: a TaskTypeDef is checked when it is registered ----------------------------------------------------------


@pytest.mark.parametrize(("change", "says"), [
    ({"final_metric": 42}, "task type 'tdx': final_metric is not callable"),
    ({"metric": "not callable"}, "task type 'tdx': metric is not callable"),
    ({"metric": len}, "task type 'tdx': metric cannot be called as fn(example, prediction)"),
    ({"output": ""}, "task type 'tdx': output must be a non-empty field name"),
    ({"name": "  "}, "task type '  ': name must be a non-empty string"),
    ({"inputs": ()}, "task type 'tdx': inputs is empty"),
    ({"inputs": "text"}, "task type 'tdx': inputs must be a tuple of strings"),
    ({"scoring": "bogus"}, "task type 'tdx': scoring 'bogus' is not a built-in scorer"),
    ({"labels": "bogus"}, "task type 'tdx': labels must be 'single', 'multi' or None"),
])  # fmt: skip
def test_a_bad_task_type_definition_is_refused_when_registered(with_plugin, change, says):
    from promptomatix.task.task_types import task_type_registry

    kw = {"name": "tdx", "inputs": ("text",), "output": "tone", "metric": _two, **change}
    with_plugin(types.SimpleNamespace(register_task_types=hookimpl(lambda register: register(TaskTypeDef(**kw)))),
                "td-plug")  # fmt: skip
    with pytest.raises(PluginError) as e:
        task_type_registry()
    assert e.value.message.startswith(f"plugin td-plug: {says}"), e.value.message
    assert "\n" not in str(e.value)


def test_a_good_task_type_definition_still_registers(with_plugin):
    from promptomatix.task.task_types import get_task_type

    good = TaskTypeDef("tdx", aliases=["td-x"], inputs=["text"], output="tone", metric=_two, final_metric=_two)
    with_plugin(types.SimpleNamespace(register_task_types=hookimpl(lambda register: register(good))), "td-plug")
    found = get_task_type("td-x")
    assert (found.name, found.inputs, found.plugin) == ("tdx", ("text",), "td-plug")


# -- F3: a plugin metric cannot replace the built-in metric or another plugin's -------------------------------


def test_a_plugin_metric_for_a_built_in_task_type_is_a_clash_naming_the_plugin(with_plugin):
    from promptomatix.metrics.registry import plugin_metric_registry

    plugin = types.SimpleNamespace(register_metrics=hookimpl(lambda register: register("classification", _two)))
    with_plugin(plugin, "clash-plug")
    with pytest.raises(PluginError) as e:
        plugin_metric_registry()  # was accepted: every classification run then scored 1.0, silently
    msg = e.value.message
    assert msg.startswith("plugin clash-plug: metric for task type 'classification' would replace the built-in")
    assert "promptomatix.builtins" in msg and "register_metric" in (e.value.hint or "")


def test_a_plugin_metric_for_another_plugins_task_type_is_a_clash_naming_both(with_plugin):
    from promptomatix.metrics.registry import plugin_metric_registry

    tone = TaskTypeDef("tone", inputs=("text",), output="tone", metric=_two)
    owner = types.SimpleNamespace(register_task_types=hookimpl(lambda register: register(tone)),
                                  register_metrics=hookimpl(lambda register: register("tone", _two, final=True)))  # fmt: skip
    with_plugin(owner, "owner-plug")
    with_plugin(types.SimpleNamespace(register_metrics=hookimpl(lambda register: register("tone", _two))), "other")
    with pytest.raises(PluginError) as e:
        plugin_metric_registry()  # the last one silently won
    assert e.value.message.startswith("plugin other: metric for task type 'tone' would replace the scoring of "
                                      "plugin owner-plug")  # fmt: skip


def test_a_plugin_adds_metrics_to_its_own_task_type_and_user_metrics_still_override(with_plugin):
    from promptomatix.metrics import MetricRegistry, MetricsManager, register_metric
    from promptomatix.metrics.registry import plugin_metric_registry

    tone = TaskTypeDef("tone", inputs=("text",), output="tone", metric=_two)
    owner = types.SimpleNamespace(register_task_types=hookimpl(lambda register: register(tone)),
                                  register_metrics=hookimpl(lambda register: register("tone", _two, final=True)))  # fmt: skip
    with_plugin(owner, "owner-plug")
    assert plugin_metric_registry().get("tone", final=True) is _two
    mine = MetricRegistry()
    register_metric("classification", lambda e, p: 0.25, registry=mine)  # a user's, for their own runs
    score = MetricsManager(["label"], registry=mine).score("classification", {"label": "a"}, {"label": "a"})
    assert score.score == 0.25


# -- a plugin backend that misbehaves in configurable ways ------------------------------------------------------


class _Settings(BaseModel):
    k: int = 1


class _Bad:
    name = "bad"

    def __init__(self, settings: _Settings, mode: str) -> None:
        self.settings, self.mode = settings, mode

    def estimate_calls(self, n_train: int, n_valid: int) -> int:
        return n_valid

    def compile(self, ctx: Any, initial: Any, data: Any) -> Any:
        from promptomatix.backends.base import BackendResult
        from promptomatix.backends.prompt import PromptProgram

        prog, shown = PromptProgram(initial, ctx.spec, ctx.task_lm), initial.render(ctx.spec)
        kw: dict[str, Any] = {"backend": "dspy" if self.mode == "name" else "bad", "prompt": shown,
                              "instructions": initial.instructions, "valid_raw": 0.5, "valid_penalized": 0.5,
                              "initial_prompt": shown, "initial_valid_raw": 0.5, "initial_valid_penalized": 0.5}  # fmt: skip
        kw.update({"nan": {"valid_raw": math.nan}, "range": {"valid_raw": 7.0, "valid_penalized": -3.0},
                   "empty": {"prompt": " "}, "mismatch": {"prompt": "TOTALLY DIFFERENT PROMPT"}}.get(self.mode, {}))  # fmt: skip
        result = BackendResult(**kw)
        if self.mode == "no_predictors":
            return result
        if self.mode == "raises":
            return result.with_predictors(_boom, _boom)
        if self.mode == "garbage":
            return result.with_predictors(lambda row: 42, lambda row: None)
        return result.with_predictors(prog, prog)


def _boom(row: dict[str, Any]) -> Any:
    raise RuntimeError("predictor boom")


def _backend(with_plugin: Any, mode: str, settings: type[BaseModel] = _Settings) -> None:
    from promptomatix.backends.registry import BackendEntry

    def build(s: Any, cfg: Any) -> _Bad:
        if mode == "build":
            raise RuntimeError("build boom")
        return _Bad(s, mode)

    entry = BackendEntry("bad", settings, build)
    with_plugin(types.SimpleNamespace(register_backends=hookimpl(lambda register: register(entry))), "bad-plug")


def _run(tmp_path: Any, **kw: Any) -> Any:
    from tests.test_pipeline import fakes, run

    clients, task, teacher = fakes()
    return run(tmp_path, clients=clients, backend="bad", **kw), task, teacher


# -- F2: a BackendResult that breaks the contract is an error naming the plugin -----------------------------------


@pytest.mark.parametrize(("mode", "says"), [
    ("nan", "with valid_raw=nan: scores must be finite numbers in [0, 1]"),
    ("range", "with valid_raw=7.0: scores must be finite numbers in [0, 1]"),
    ("empty", "with an empty prompt"),
    ("mismatch", "whose prompt 'TOTALLY DIFFERENT PROMPT' is not the prompt its best predictor runs"),
    ("no_predictors", "without a callable best predictor (got NoneType)"),
])  # fmt: skip
def test_a_backend_result_that_breaks_the_contract_fails_naming_the_plugin(with_plugin, tmp_path, mode, says):
    from promptomatix.api import list_sessions

    _backend(with_plugin, mode)
    with pytest.raises(PluginError) as e:
        _run(tmp_path)  # NaN, 7.0, an empty or unscored prompt were saved with exit 0
    assert e.value.message == f"plugin bad-plug: backend 'bad' compile returned a BackendResult {says}"
    assert e.value.plugin == "bad-plug"
    (s,) = list_sessions(sessions_dir=str(tmp_path / "s"))
    assert s.status == "failed"  # its spec and data stay


def test_the_session_records_the_registered_backend_name(with_plugin, tmp_path):
    _backend(with_plugin, "name")
    result, _, _ = _run(tmp_path)
    assert result["backend"] == "bad"  # was "dspy", what the plugin's result said


# -- F8: the backend is checked before the first call ------------------------------------------------------------


@pytest.mark.parametrize(("mode", "options", "error", "says"), [
    ("build", {}, PluginError, "plugin bad-plug: backend 'bad' build failed: RuntimeError: build boom"),
    ("ok", {"k": "many"}, UsageError, "invalid setting 'k' for the bad backend"),
])  # fmt: skip
def test_a_backend_that_cannot_be_built_fails_before_any_call(with_plugin, tmp_path, mode, options, error, says):
    from promptomatix.api import list_sessions

    _backend(with_plugin, mode)
    from tests.test_pipeline import fakes, run

    clients, task, teacher = fakes()
    with pytest.raises(error) as e:
        run(tmp_path, clients=clients, backend="bad", backend_options=options)
    assert e.value.message.startswith(says)
    assert task.n == 0 and teacher.n == 0  # the spec (and any synthetic data) were paid for first
    assert not list_sessions(sessions_dir=str(tmp_path / "s"))


# -- F9: a plugin predictor's failure names the plugin, not the task model ---------------------------------------


@pytest.mark.parametrize(("mode", "says"), [
    ("raises", "plugin bad-plug: backend 'bad' initial predictor failed: RuntimeError: predictor boom"),
    ("garbage", "plugin bad-plug: backend 'bad' initial predictor returned NoneType None, not a prediction"),
])  # fmt: skip
def test_a_plugin_predictor_that_fails_is_blamed_on_the_plugin(with_plugin, tmp_path, mode, says):
    _backend(with_plugin, mode)
    with pytest.raises(PluginError) as e:
        _run(tmp_path)  # was "the task model could not answer ... (check --model/--api-base)"
    assert e.value.message == says and e.value.plugin == "bad-plug"


def test_unreadable_answers_from_a_plugin_backend_name_it():
    from promptomatix.metrics.evaluator import EvalReport, ExampleRecord
    from promptomatix.run_guard import require_readable_answers

    rec = ExampleRecord(index=0, inputs={}, gold={"label": "a"}, output={"label": "zzz"}, score=0.0, raw_score=0.0,
                        predicted="")  # fmt: skip
    rep = EvalReport(mean=0.0, mean_raw=0.0, ci_low=0.0, ci_high=0.0, n=1, n_errors=0, records=[rec])
    with pytest.raises(ModelUnavailableError) as e:
        require_readable_answers([rep], "backend 'bad' (plugin bad-plug)")
    assert "the predictors of backend 'bad' (plugin bad-plug) never gave a readable answer" in e.value.message


# -- F11: an unknown --backend-option key is refused for every backend -------------------------------------------


def test_a_misspelled_backend_option_is_refused_for_a_plugin_backend(with_plugin):
    from promptomatix.backends.registry import backend_settings
    from promptomatix.config import RunConfig

    class Suffixes(BaseModel):  # no extra="forbid": pydantic ignored the typo, the run used the defaults
        suffixes: list[str] = ["Be brief."]

    _backend(with_plugin, "ok", Suffixes)
    with pytest.raises(UsageError) as e:
        backend_settings(RunConfig(raw_input="x", backend="bad", backend_options={"suffixs": ["Be terse."]}))
    assert e.value.message == "unknown setting 'suffixs' for the bad backend" and e.value.exit_code == 2
    assert e.value.hint == "did you mean 'suffixes'? its settings: suffixes"
    ok = backend_settings(RunConfig(raw_input="x", backend="bad", backend_options={"suffixes": ["Be terse."]}))
    assert ok.suffixes == ["Be terse."]


# -- F13: a provider matcher that raises names its plugin, and leaves no session -------------------------------


def test_a_provider_matcher_that_raises_names_the_plugin_and_leaves_no_session(with_plugin, tmp_path):
    from promptomatix import process_input
    from promptomatix.api import list_sessions
    from promptomatix.lm.factory import create_client
    from promptomatix.lm.providers import ModelProvider
    from tests.test_pipeline import GIVEN, TASK

    def matches(model: str) -> bool:
        raise RuntimeError("matcher boom")

    prov = ModelProvider("matcher", lambda m, o: None, matches=matches)
    with_plugin(types.SimpleNamespace(register_models=hookimpl(lambda register: register(prov))), "match-plug")
    with pytest.raises(PluginError, match=r"^plugin match-plug: model provider 'matcher' match for 'openai/gpt-4o-mini'"
                       r" failed: RuntimeError: matcher boom"):  # fmt: skip
        create_client("openai/gpt-4o-mini", api_key="k")  # was "unexpected error: RuntimeError: matcher boom"
    with pytest.raises(PluginError):
        process_input(human_input=TASK, sessions_dir=str(tmp_path / "s"), model_name="openai/gpt-4o-mini",
                      api_key="k", dry_run=True, **GIVEN)  # fmt: skip
    assert not list_sessions(sessions_dir=str(tmp_path / "s"))  # a failed session was left behind
