"""Review 26: a role borrows another role's key only on the same server and provider (F1, F3), the teacher's key and
server on every command that calls the teacher (F2, F4), hints that name the teacher's flags (F5, F7), the HTTP
client's own loggers scrubbed (F11), and a teacher endpoint with a local task model refused (F8).

Servers are FaultServers on 127.0.0.1 that record the Authorization header of every request."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from promptomatix.config import RunConfig
from promptomatix.errors import ConfigurationError, ModelUnavailableError
from promptomatix.lm import factory
from promptomatix.testing.fault_server import FaultServer
from tests.cli_run import run_main
from tests.test_review24_config import _created

REVIEWS = Path(__file__).resolve().parents[1] / "examples" / "data" / "reviews.csv"
TASK_KEY, TEACHER_KEY = "sk-task-key-2626262626", "sk-teacher-key-2626262626"
TASK = "Classify the sentiment of a movie review"


class Recording(FaultServer):
    """A FaultServer that keeps the Authorization header of every request."""

    def __init__(self, mode: Any = "ok", **kw: Any):
        super().__init__(mode, **kw)
        self.auth: list[str | None] = []

    def _handler(self) -> Any:
        base, server = super()._handler(), self

        class Handler(base):  # type: ignore[misc, valid-type]
            def do_POST(self) -> None:
                server.auth.append(self.headers.get("Authorization"))
                return super().do_POST()

        return Handler


# F3: which key goes to which server --------------------------------------------------------------------------


def test_a_teacher_key_without_a_teacher_base_is_the_providers_own_url_not_the_task_server(monkeypatch) -> None:
    made = _created(monkeypatch)
    cfg = RunConfig.from_kwargs(raw_input="x", model_name="openai/llama", model_api_key=TASK_KEY,
                                model_api_base="http://box:1/v1", config_model_name="openai/gpt-4o-mini",
                                config_model_api_key=TEACHER_KEY)  # fmt: skip
    factory.build_boundary(cfg.model_settings())
    assert made == [("openai/llama", TASK_KEY, "http://box:1/v1"), ("openai/gpt-4o-mini", TEACHER_KEY, None)]


def test_an_exported_teacher_key_never_reaches_the_task_server(monkeypatch) -> None:
    """No teacher model: the teacher would be the task model's string on its provider's URL; refused."""
    made = _created(monkeypatch)
    cfg = RunConfig.from_kwargs(raw_input="x", model="openai/llama", api_key=TASK_KEY, api_base="http://box:1/v1",
                                teacher_api_key=TEACHER_KEY)  # fmt: skip
    with pytest.raises(ConfigurationError, match="--teacher-model") as e:
        factory.build_boundary(cfg.model_settings())
    assert TEACHER_KEY not in str(e.value) and all(k != TEACHER_KEY for _, k, _ in made)
    with pytest.raises(ConfigurationError, match="--teacher-model"):
        factory.check_models(cfg.model_settings())


def test_a_key_is_never_lent_to_another_provider_or_server(monkeypatch) -> None:
    made = _created(monkeypatch)
    cfg = RunConfig(model="openai/gpt-4o-mini", api_key=TASK_KEY, teacher_model="anthropic/claude-3-5-haiku-latest")
    factory.build_boundary(cfg.model_settings())
    assert made == [("openai/gpt-4o-mini", TASK_KEY, None), ("anthropic/claude-3-5-haiku-latest", None, None)]
    made.clear()
    cfg = RunConfig(model="openai/x", api_key=TASK_KEY, api_base="http://task:1/v1", teacher_api_key=TEACHER_KEY,
                    teacher_model="openai/t", judge_model="anthropic/claude-3-5-haiku-latest")  # fmt: skip
    factory.build_boundary(cfg.model_settings())
    assert made == [("openai/x", TASK_KEY, "http://task:1/v1"), ("openai/t", TEACHER_KEY, None),
                    ("anthropic/claude-3-5-haiku-latest", None, None)]  # fmt: skip
    made.clear()
    cfg = RunConfig(model="openai/m", api_key=TASK_KEY, api_base="http://a:1/v1", teacher_api_base="http://b:2/v1")
    factory.build_boundary(cfg.model_settings())
    assert made == [("openai/m", TASK_KEY, "http://a:1/v1"), ("openai/m", None, "http://b:2/v1")]


def test_the_same_server_and_provider_still_share_the_key(monkeypatch) -> None:
    made = _created(monkeypatch)
    cfg = RunConfig(model="openai/s", teacher_model="openai/t", api_key=TASK_KEY, api_base="http://a:1/v1",
                    teacher_api_base="http://a:1/v1")  # fmt: skip
    factory.build_boundary(cfg.model_settings())
    assert made == [("openai/s", TASK_KEY, "http://a:1/v1"), ("openai/t", TASK_KEY, "http://a:1/v1")]


def test_the_task_server_never_sees_the_teacher_key_over_http(tmp_path: Path) -> None:
    from promptomatix import process_input

    with Recording() as task, Recording() as teacher:
        process_input(raw_input=TASK, data=str(REVIEWS), dry_run=True, sessions_dir=str(tmp_path),
                      model_name="openai/student", model_api_key=TASK_KEY, model_api_base=task.base_url,
                      config_model_name="openai/teacher", config_model_api_key=TEACHER_KEY,
                      config_model_api_base=teacher.base_url)  # fmt: skip
    assert set(task.auth) <= {f"Bearer {TASK_KEY}"}
    assert teacher.auth and set(teacher.auth) == {f"Bearer {TEACHER_KEY}"}


# F1: follow-ups of a session whose teacher had its own key ------------------------------------------------------


def _session_with_own_teacher_key(tmp_path: Path, teacher_base: str) -> str:
    from promptomatix import process_input
    from promptomatix.cli.fakes import clients_from_script

    clients = clients_from_script({"task": {"default": {"label": "positive"}}, "teacher": {"default": {}}})
    r = process_input(raw_input=TASK, data=str(REVIEWS), sessions_dir=str(tmp_path), clients=clients,
                      model_name="openai/student", model_api_base="http://127.0.0.1:9/v1", model_api_key=TASK_KEY,
                      config_model_name="openai/teacher", config_model_api_key=TEACHER_KEY,
                      config_model_api_base=teacher_base, max_calls=60)  # fmt: skip
    saved = (tmp_path / r.session_id / "session.json").read_text()
    assert TEACHER_KEY not in saved and json.loads(saved)["run_config"]["teacher_own_key"] is True
    return r.session_id


@pytest.mark.parametrize("command", ["refine", "resume", "feedback"])
def test_a_follow_up_given_only_the_task_key_is_refused(tmp_path: Path, command: str) -> None:
    from promptomatix import followup
    from promptomatix.sessions import SessionStore

    with Recording() as teacher:
        sid = _session_with_own_teacher_key(tmp_path, teacher.base_url)
        store = SessionStore(tmp_path)
        if command == "resume":
            store.update(sid, lambda s: setattr(s, "status", "interrupted"))
        call = {"refine": followup.refine, "resume": followup.resume, "feedback": followup.generate_feedback}[command]
        with pytest.raises(ConfigurationError, match="teacher had its own key") as e:
            call(sid, store=store, api_key=TASK_KEY)
        assert "--teacher-api-key" in (e.value.hint or "")
    assert teacher.auth == []


def test_the_cli_refuses_refine_with_only_the_task_key(tmp_path: Path, capsys, monkeypatch) -> None:
    with Recording() as teacher:
        sid = _session_with_own_teacher_key(tmp_path, teacher.base_url)
        monkeypatch.delenv("PROMPTOMATIX_TEACHER_API_KEY", raising=False)
        for args in (["refine", sid], ["feedback", "generate", sid]):
            code, _, err = run_main(capsys, *args, "--api-key", TASK_KEY, "--sessions-dir", str(tmp_path))
            assert code != 0 and "--teacher-api-key" in err and TASK_KEY not in err, err
    assert teacher.auth == []


# F2, F4: the teacher's options on feedback generate and batch --------------------------------------------------


def test_feedback_generate_and_batch_take_the_teachers_endpoint(capsys) -> None:
    for args in (["feedback", "generate", "--help"], ["batch", "--help"]):
        code, out, _ = run_main(capsys, *args)
        assert code == 0 and "--teacher-api-base" in out and "--teacher-api-key" in out, args


def test_feedback_generate_sends_the_teacher_key_to_the_teacher_only(tmp_path: Path, capsys) -> None:
    with Recording() as teacher, Recording() as task:
        sid = _session_with_own_teacher_key(tmp_path, teacher.base_url)
        _, _, err = run_main(capsys, "feedback", "generate", sid, "--api-key", TASK_KEY, "--api-base",
                                task.base_url, "--teacher-api-key", TEACHER_KEY, "--teacher-api-base",
                                teacher.base_url, "--sessions-dir", str(tmp_path), "--max-calls", "20")  # fmt: skip
    assert teacher.auth and set(teacher.auth) == {f"Bearer {TEACHER_KEY}"}, err
    assert set(task.auth) <= {f"Bearer {TASK_KEY}"}


def test_a_batch_job_teacher_gets_the_batch_teacher_key_not_the_task_key() -> None:
    from promptomatix.batch import worker

    payload = worker.JobPayload(key="k", name="j", options={"raw_input": TASK, "model": "openai/s",
                                "api_base": "http://a:1/v1", "teacher_api_base": "http://b:2/v1"}, session_id="x",
                                api_key=TASK_KEY, teacher_api_key=TEACHER_KEY)  # fmt: skip
    assert worker.job_teacher(payload, resuming=False) == {"teacher_api_key": TEACHER_KEY}
    assert worker.job_teacher(payload, resuming=True) == {"teacher_api_key": TEACHER_KEY,
                                                         "teacher_api_base": "http://b:2/v1"}  # fmt: skip
    cfg = RunConfig.from_kwargs(**payload.options, api_key=TASK_KEY, **worker.job_teacher(payload, resuming=False))
    assert cfg.model_settings().endpoint("teacher")[0].get_secret_value() == TEACHER_KEY
    keyless = worker.JobPayload(key="k", name="j", options=payload.options, session_id="x", api_key=TASK_KEY)
    cfg = RunConfig.from_kwargs(**keyless.options, api_key=TASK_KEY, **worker.job_teacher(keyless, resuming=False))
    assert cfg.model_settings().endpoint("teacher") == (None, "http://b:2/v1")


# F5, F7: hints name the teacher's flags -------------------------------------------------------------------------


def test_a_401_from_the_teachers_server_names_the_teacher_key(tmp_path: Path) -> None:
    from promptomatix import process_input

    with Recording() as task, Recording("401") as teacher, pytest.raises(ModelUnavailableError) as e:
        process_input(raw_input=TASK, data=str(REVIEWS), dry_run=True, sessions_dir=str(tmp_path),
                      model_name="openai/student", model_api_key=TASK_KEY, model_api_base=task.base_url,
                      config_model_name="openai/teacher", config_model_api_key=TEACHER_KEY,
                      config_model_api_base=teacher.base_url)  # fmt: skip
    assert "teacher_api_key" in str(e.value) and "model_api_key" not in str(e.value)


def test_sessions_show_names_the_teacher_flags(tmp_path: Path, capsys) -> None:
    from promptomatix.cli.sessions_view import model_line
    from promptomatix.sessions import SessionStore

    store = SessionStore(tmp_path)
    s = store.new_session(raw_input="x")
    s.run_config = {"model": "openai/s", "api_base": "http://a:1/v1", "teacher_model": "openai/t",
                    "teacher_api_base": "http://b:2/v1", "teacher_own_key": True}  # fmt: skip
    s.note_stripped_credentials(["teacher_api_base"])
    line = model_line(s) or ""
    assert "teacher openai/t at http://b:2/v1" in line and "pass --teacher-api-base" in line
    assert "--teacher-api-key" in line and "pass --api-base" not in line


# F11: the SDK's own HTTP loggers -------------------------------------------------------------------------------


def test_every_http_client_logger_is_scrubbed() -> None:
    from promptomatix.lm.remote import _litellm
    from promptomatix.sessions.secrets import ScrubFilter

    _litellm()
    names = [n for n in logging.Logger.manager.loggerDict if n.split(".")[0] in ("httpx2", "httpcore2", "httpx")]
    assert "httpx2" in names or "httpx" in names
    for name in [*names, "httpx2", "httpcore2.http11"]:
        assert any(isinstance(f, ScrubFilter) for f in logging.getLogger(name).filters), name


def test_a_host_logging_at_info_never_records_url_credentials(tmp_path: Path, caplog) -> None:
    from promptomatix import process_input

    with Recording() as server, caplog.at_level(logging.INFO):
        base = server.base_url.replace("http://", "http://tuser:TPASS-2626@") + "?token=QSECRET-2626"
        process_input(raw_input=TASK, data=str(REVIEWS), dry_run=True, sessions_dir=str(tmp_path),
                      model_name="openai/s", model_api_key=TASK_KEY, model_api_base=server.base_url,
                      config_model_name="openai/t", config_model_api_key=TEACHER_KEY, config_model_api_base=base)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "HTTP Request" in text
    assert "TPASS-2626" not in text and "QSECRET-2626" not in text and TEACHER_KEY not in text


# F8 ---------------------------------------------------------------------------------------------------------------


def test_a_teacher_server_with_a_local_task_model_needs_a_teacher_model(monkeypatch) -> None:
    made = _created(monkeypatch)
    cfg = RunConfig(teacher_api_base="http://teacher:1/v1", teacher_api_key=TEACHER_KEY)
    with pytest.raises(ConfigurationError, match="--teacher-model"):
        factory.check_models(cfg.model_settings())
    with pytest.raises(ConfigurationError, match="--teacher-model"):
        factory.build_boundary(cfg.model_settings())
    assert all(not m.startswith("local") or k is None for m, k, _ in made)
    made.clear()  # a key alone (an exported PROMPTOMATIX_TEACHER_API_KEY) does not matter to a local teacher
    cfg = RunConfig(teacher_api_key=TEACHER_KEY)
    factory.build_boundary(cfg.model_settings())
    assert len(made) == 1 and cfg.persistable()["teacher_own_key"] is False
