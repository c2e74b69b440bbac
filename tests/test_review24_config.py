"""Review 24, for upstream migrants: the teacher's own endpoint (F1), `promptomatix.main` (F5), upstream kwargs and
flags mapped or refused, never dropped (F7), bare Hugging Face names (F8), and the API's rough edges (F10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import pytest

from promptomatix.config import RunConfig
from promptomatix.errors import ConfigurationError, DataUsageError
from promptomatix.lm import factory
from promptomatix.lm.fake import FakeLM
from tests.cli_run import run_main

REVIEWS = Path(__file__).resolve().parents[1] / "examples" / "data" / "reviews.csv"
TASK_KEY, TEACHER_KEY = "sk-task-key-0123456789", "sk-teacher-key-0123456789"


def _created(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None, str | None]]:
    """The (model, key, base) of every client build_boundary creates."""
    made: list[tuple[str, str | None, str | None]] = []

    def create(model: str, *, api_key: str | None = None, api_base: str | None = None, **_: Any) -> FakeLM:
        made.append((model, api_key, api_base))
        return FakeLM({"default": {}})

    monkeypatch.setattr(factory, "create_client", create)
    return made


# F1 ------------------------------------------------------------------------------------------------------------


def test_the_teacher_and_judge_get_their_own_server_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    made = _created(monkeypatch)
    cfg = RunConfig.from_kwargs(
        raw_input="x", model_name="openai/student", model_api_key=TASK_KEY, model_api_base="http://a:1/v1",
        config_model_name="openai/teacher", config_model_api_key=TEACHER_KEY, config_model_api_base="http://b:2/v1",
        judge_model="openai/judge",
    )  # fmt: skip
    factory.build_boundary(cfg.model_settings())
    assert made == [
        ("openai/student", TASK_KEY, "http://a:1/v1"),
        ("openai/teacher", TEACHER_KEY, "http://b:2/v1"),
        ("openai/judge", TEACHER_KEY, "http://b:2/v1"),
    ]


def test_the_same_model_string_as_teacher_on_another_server_is_another_client(monkeypatch: pytest.MonkeyPatch) -> None:
    made = _created(monkeypatch)
    cfg = RunConfig(model="openai/m", api_base="http://a:1/v1", teacher_api_base="http://b:2/v1")
    factory.build_boundary(cfg.model_settings())
    assert made == [("openai/m", None, "http://a:1/v1"), ("openai/m", None, "http://b:2/v1")]


def test_without_a_teacher_endpoint_the_teacher_shares_the_task_models(monkeypatch: pytest.MonkeyPatch) -> None:
    made = _created(monkeypatch)
    cfg = RunConfig.from_kwargs(raw_input="x", model="openai/s", teacher_model="openai/t", api_key=TASK_KEY,
                                api_base="http://a:1/v1")  # fmt: skip
    factory.build_boundary(cfg.model_settings())
    assert made == [("openai/s", TASK_KEY, "http://a:1/v1"), ("openai/t", TASK_KEY, "http://a:1/v1")]


def test_the_teacher_key_is_never_stored_and_is_scrubbed_like_the_task_key() -> None:
    from promptomatix.sessions.secrets import scrub

    cfg = RunConfig.from_kwargs(raw_input="x", config_model_api_key="t3achr-hex-key",
                                config_model_api_base="http://u:pw-9@b:2/v1")  # fmt: skip
    saved = cfg.persistable()
    assert "teacher_api_key" not in saved and saved["teacher_api_base"] == "http://u:pw-9@b:2/v1"
    written = json.dumps(scrub(saved)) + json.dumps(scrub({"note": "key t3achr-hex-key in a message"}))
    assert "t3achr-hex-key" not in written and "pw-9" not in written and "b:2/v1" in written
    with pytest.raises(ConfigurationError, match="no scheme"):
        RunConfig.from_kwargs(raw_input="x", config_model_api_base="b:2/v1")


def test_a_run_sends_the_teachers_calls_to_the_teachers_server(tmp_path: Path) -> None:
    from promptomatix import process_input
    from promptomatix.testing.fault_server import FaultServer

    with FaultServer("ok") as task, FaultServer("ok") as teacher:
        r = process_input(
            raw_input="Classify the sentiment of a movie review", data=str(REVIEWS), dry_run=True,
            sessions_dir=str(tmp_path), model_name="openai/student", model_api_key=TASK_KEY,
            model_api_base=task.base_url, config_model_name="openai/teacher", config_model_api_key=TEACHER_KEY,
            config_model_api_base=teacher.base_url,
        )  # fmt: skip
    assert {b["model"] for b in teacher.bodies} == {"teacher"}
    assert "teacher" not in {b["model"] for b in task.bodies}
    session = json.loads((tmp_path / r.session_id / "session.json").read_text())
    assert session["run_config"]["teacher_api_base"] == teacher.base_url
    for f in tmp_path.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert TEACHER_KEY.encode() not in data and TASK_KEY.encode() not in data, f


def test_the_cli_takes_the_teachers_endpoint_on_optimize_refine_and_resume(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _capture_config(monkeypatch)
    code, _, err = run_main(capsys, "optimize", "x", "--data", str(REVIEWS), "--teacher-api-base", "http://b:2/v1",
                            "--config_model_api_key", TEACHER_KEY)  # fmt: skip
    assert code == 0, err
    assert seen[0].teacher_api_base == "http://b:2/v1"
    assert seen[0].teacher_api_key.get_secret_value() == TEACHER_KEY
    for command in ("refine", "resume"):
        code, out, _ = run_main(capsys, command, "--help")
        assert "--teacher-api-base" in out and "--teacher-api-key" in out


def _capture_config(monkeypatch: pytest.MonkeyPatch) -> list[RunConfig]:
    """`optimize` stops after building its RunConfig (exit 0), which is kept."""
    import typer

    import promptomatix.run.inputs as inputs

    seen: list[RunConfig] = []

    def capture(cfg: RunConfig, clients: Any) -> None:
        seen.append(cfg)
        raise typer.Exit(0)

    monkeypatch.setattr(inputs, "check_command_line", capture)
    return seen


# F5 ------------------------------------------------------------------------------------------------------------


def test_upstreams_import_path_works_and_stays_cheap() -> None:
    code = (
        "import os, promptomatix\nfrom promptomatix.main import process_input, generate_feedback, "
        "optimize_with_feedback, save_feedback\nimport promptomatix.main as m\n"
        "assert os.path.dirname(m.__file__) == os.path.dirname(promptomatix.__file__)\n"
        "print(process_input.__module__)\n"
        "try:\n    m.download_session\nexcept AttributeError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("promptomatix.api") and "sessions export" in out
    cheap = "import sys, promptomatix.main; print(sorted({'dspy', 'litellm', 'pydantic'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", cheap], capture_output=True, text=True).stdout.strip() == "[]"


def test_upstreams_generate_feedback_call_names_what_ours_takes(tmp_path: Path) -> None:
    from promptomatix.main import generate_feedback

    with pytest.raises(ConfigurationError, match="takes a session, not optimized_prompt, input_fields") as e:
        generate_feedback(session_id="s", optimized_prompt="p", input_fields=["text"], sessions_dir=str(tmp_path))
    assert "session_id" in (e.value.hint or "")


# F7 ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tools": ["search"]}, "register_module"),
        ({"valid_data_full": [{"a": 1}]}, "valid_data"),
        ({"model_provider": "openai"}, "names no model"),
        ({"model_provider": "anthropic", "model_name": "openai/gpt-4o-mini"}, "names provider 'openai'"),
        ({"model_provider": "local", "model_name": "m"}, "provider/NAME"),
    ],
)
def test_upstream_kwargs_we_cannot_honour_are_refused_with_the_replacement(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError) as e:
        RunConfig.from_kwargs(raw_input="x", **kwargs)
    assert match in f"{e.value.message} ({e.value.hint})"


def test_model_provider_is_folded_into_the_model_string() -> None:
    cfg = RunConfig.from_kwargs(raw_input="x", model_provider="anthropic", model_name="claude-3-5-sonnet-20241022",
                                config_model_provider="togetherai", config_model_name="meta-llama/Llama-3")  # fmt: skip
    assert cfg.model == "anthropic/claude-3-5-sonnet-20241022" and cfg.teacher_model == "together_ai/meta-llama/Llama-3"
    assert RunConfig.from_kwargs(raw_input="x", model_provider="openai", model_name="openai/g").model == "openai/g"


def test_upstream_kwargs_without_effect_warn_and_implied_ones_are_silent() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        RunConfig.from_kwargs(raw_input="x", style_guide="terse", load_data_local=True)
    assert [str(w.message) for w in caught] == ["ignored: style_guide (no effect upstream either)"]


def test_the_cli_takes_upstreams_spellings(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _capture_config(monkeypatch)
    code, _, err = run_main(
        capsys, "optimize", "x", "--max_tokens", "20", "--temperature", "0.3", "--config_temperature", "0.9",
        "--trainer", "MIPROv2", "--backend", "dspy", "--constraints", "be brief,no emoji", "--model_provider",
        "openai", "--model_name", "gpt-4o-mini", "--style_guide", "terse",
    )  # fmt: skip
    assert code == 0, err
    cfg = seen[0]
    assert (cfg.max_tokens, cfg.temperature, cfg.teacher_temperature) == (20, 0.3, 0.9)
    assert cfg.dspy_optimizer == "miprov2" and cfg.constraints == ["be brief", "no emoji"]
    assert cfg.model == "openai/gpt-4o-mini"
    assert "Warning: ignored: style_guide" in err and "UserWarning" not in err


def test_the_cli_refuses_upstream_flags_it_cannot_honour_naming_the_replacement(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run_main(capsys, "optimize", "x", "--tools", "search", "--dry-run")
    assert code == 2 and "tools is not supported" in err and "register_module" in err


def test_upstreams_invocation_without_a_command_names_optimize(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "--raw_input", "Classify reviews")
    assert code == 2 and 'promptomatix optimize "…"' in err


# F8 ------------------------------------------------------------------------------------------------------------


def test_a_bare_huggingface_dataset_name_is_read_as_hf(tmp_path: Path) -> None:
    assert RunConfig.from_kwargs(raw_input="x", huggingface_dataset_name="squad_v2").data == "hf:squad_v2"
    assert RunConfig.from_kwargs(raw_input="x", huggingface_dataset_name="hf:gsm8k").data == "hf:gsm8k"
    assert RunConfig.from_kwargs(raw_input="x", huggingface_dataset_name=str(REVIEWS)).data == str(REVIEWS)
    cfg = RunConfig.from_kwargs(huggingface_dataset_name="squad_v2")  # upstream: the task comes from the data
    assert cfg.raw_input == "Learn the task shown by the data in hf:squad_v2"


def test_the_cli_reads_a_bare_huggingface_dataset_name_as_hf(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _capture_config(monkeypatch)
    code, _, err = run_main(capsys, "optimize", "--huggingface_dataset_name", "squad_v2")
    assert code == 0, err
    assert seen[0].data == "hf:squad_v2"


def test_a_missing_file_without_extension_hints_hf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from promptomatix.data import load_rows

    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataUsageError) as e:
        load_rows("squad_v2")
    assert "hf:squad_v2" in (e.value.hint or "")


# F10 -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "match"), [({"progress": "x"}, "progress must be"), ({"track": 123}, "track")])
def test_a_wrong_progress_or_track_is_refused_before_any_session(
    tmp_path: Path, kwargs: dict[str, Any], match: str
) -> None:
    from promptomatix import process_input

    with pytest.raises(ConfigurationError, match=match):
        process_input(raw_input="Classify reviews", data=str(REVIEWS), sessions_dir=str(tmp_path), **kwargs)
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]


def test_a_metric_function_is_refused_naming_how_to_give_one() -> None:
    with pytest.raises(ConfigurationError) as e:
        RunConfig.from_kwargs(raw_input="x", metric=lambda example, prediction: 1.0)
    assert "module:function" in (e.value.hint or "") and "register_metric" in (e.value.hint or "")


def test_library_warnings_stay_off_a_hosts_stderr_and_the_cli_still_shows_them() -> None:
    emit = "import logging\nlogging.getLogger('promptomatix.x').warning('library says %s', 'hi')\n"
    host = subprocess.run([sys.executable, "-c", "import promptomatix.config\n" + emit], capture_output=True, text=True)
    assert host.stderr == ""
    cli = "from promptomatix.logsetup import show_warnings\nshow_warnings()\n" + emit
    assert "library says hi" in subprocess.run([sys.executable, "-c", cli], capture_output=True, text=True).stderr
    configured = "import logging, sys\nlogging.basicConfig(stream=sys.stdout)\n" + cli  # a host's own handler: once
    out = subprocess.run([sys.executable, "-c", configured], capture_output=True, text=True)
    assert out.stdout.count("library says hi") == 1 and out.stderr == ""


def test_a_host_that_loaded_litellm_keeps_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LITELLM_LOCAL_MODEL_COST_MAP", raising=False)
    monkeypatch.setitem(sys.modules, "litellm", types.ModuleType("litellm"))
    factory.build_boundary(factory.ModelSettings(), clients={"task": FakeLM({"default": {}})})
    assert "LITELLM_LOCAL_MODEL_COST_MAP" not in os.environ


def test_train_data_and_a_train_file_are_combined() -> None:
    from promptomatix.run.stages import user_rows

    given = [{"review": f"given row {i}", "label": "positive"} for i in range(3)]
    cfg = RunConfig.from_kwargs(raw_input="x", train_data=given, local_train_data_path=str(REVIEWS),
                                input_fields=["review"], output_fields=["label"])  # fmt: skip
    rows = user_rows(types.SimpleNamespace(config=cfg))["train_rows"]
    texts = [r["review"] for r in rows]
    assert texts[-3:] == [r["review"] for r in given] and len(texts) > 3
