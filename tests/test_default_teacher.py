"""The stronger local teacher is the default only for a run that writes its own data with the embedded model,
and only when that model is already on disk (nothing is downloaded for it)."""

from pathlib import Path

import pytest

from promptomatix.config import RunConfig
from promptomatix.lm.catalog import get_known, model_path
from promptomatix.lm.teacher import STRONGER_LOCAL_TEACHER, default_teacher


def _pull(models: Path) -> None:
    path = model_path(STRONGER_LOCAL_TEACHER)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF")
    path.with_suffix(path.suffix + ".sha256").write_text(get_known(STRONGER_LOCAL_TEACHER).sha256)


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROMPTOMATIX_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path / "models"


def test_synthetic_run_on_the_embedded_model_gets_the_stronger_teacher(models: Path):
    _pull(models)
    cfg, note = default_teacher(RunConfig(raw_input="Classify the sentiment of a review"))
    assert cfg.teacher_model == "local/qwen2.5-coder-0.5b"
    assert note and "--teacher-model" in note and "label check" in note


@pytest.mark.parametrize(
    "kwargs",
    [
        {"teacher_model": "local/smollm2-135m"},  # the user chose
        {"model": "openai/gpt-4o-mini"},  # not the embedded model
        {"train_data": [{"text": "a", "label": "x"}]},  # rows given: the teacher writes none
        {"data": "reviews.csv"},
        {"synthetic_data_size": 0},
    ],
)
def test_left_alone_when_it_does_not_apply(models: Path, kwargs: dict):
    _pull(models)
    cfg, note = default_teacher(RunConfig(raw_input="Classify", **kwargs))
    assert note is None and cfg.teacher_model == kwargs.get("teacher_model")


def test_never_downloads_and_never_switches_injected_clients(models: Path):
    cfg, note = default_teacher(RunConfig(raw_input="Classify"))
    assert note is None and cfg.teacher_model is None and not models.exists()
    _pull(models)
    cfg, note = default_teacher(RunConfig(raw_input="Classify"), fake_clients=True)
    assert note is None and cfg.teacher_model is None


def test_a_synthetic_dry_run_records_and_shows_the_chosen_teacher(models: Path, tmp_path: Path, monkeypatch):
    """End to end through process_input: the teacher lands in the session's config and the dry run's assumptions
    (fake clients stand in for both models; the switch is forced on as if they were the real ones)."""
    from promptomatix import process_input
    from promptomatix.api import load_session
    from promptomatix.lm import teacher as teacher_mod
    from promptomatix.lm.fake import FakeLM

    _pull(models)
    real = teacher_mod.default_teacher
    monkeypatch.setattr(teacher_mod, "default_teacher", lambda cfg, fake_clients=False: real(cfg))
    clients = {"task": FakeLM(default="positive", model="fake/task"),
               "teacher": FakeLM(default='{"input_fields": ["review"]}', model="fake/teacher")}  # fmt: skip
    d = process_input(clients=clients, human_input="Classify the sentiment of a movie review", synthetic_data_size=30,
                      sessions_dir=str(tmp_path / "s"), dry_run=True, task_type="classification",
                      input_fields=["review"], output_fields=["label"], labels=["positive", "negative"])  # fmt: skip
    assert any(a.startswith("teacher: local/qwen2.5-coder-0.5b") for a in d.assumptions)
    s = load_session(d.session_id, sessions_dir=str(tmp_path / "s"))
    assert s.run_config["teacher_model"] == "local/qwen2.5-coder-0.5b"
