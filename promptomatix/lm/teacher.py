"""The default teacher: the embedded 135M model cannot write labelled rows that survive the blind-relabel check
(its labels agree with its own relabels at chance, benchmarks/RESULTS.md §6), so a run that must write its data
uses the stronger local model as teacher when that model is already on this machine. Nothing is downloaded for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from promptomatix.config import RunConfig

STRONGER_LOCAL_TEACHER = "qwen2.5-coder-0.5b"
TEACHER_NOTE = "teacher: "


def writes_its_own_data(cfg: RunConfig) -> bool:
    """No rows given in any form, so every train/valid/test row is synthetic."""
    given = (cfg.data, cfg.train_data, cfg.valid_data, cfg.test_data, cfg.local_train_data_path, cfg.sample_data)
    return cfg.synthetic_data_size > 0 and not any(given)


def default_teacher(cfg: RunConfig, *, fake_clients: bool = False) -> tuple[RunConfig, str | None]:
    """`cfg` with the stronger local teacher filled in when it applies, and the note that says so (else None).

    Applies only when the user named no teacher, the task model is the embedded default, the run writes its own
    data, and the stronger model is already pulled. Injected clients (tests, benchmarks) are never switched."""
    from promptomatix.lm.catalog import is_pulled
    from promptomatix.lm.factory import DEFAULT_MODEL

    if fake_clients or cfg.teacher_model or cfg.model != DEFAULT_MODEL or not writes_its_own_data(cfg):
        return cfg, None
    if not is_pulled(STRONGER_LOCAL_TEACHER):
        return cfg, None
    teacher = f"local/{STRONGER_LOCAL_TEACHER}"
    note = (f"{TEACHER_NOTE}{teacher} (found on this machine), because the embedded {DEFAULT_MODEL} cannot write "
            "labelled rows that pass the label check; pass --teacher-model to choose another")  # fmt: skip
    return cfg.model_copy(update={"teacher_model": teacher}), note
