"""A long stage must not look stalled: the teacher writing synthetic rows reports each answered batch and each
round, and where stderr is a log (not a terminal) the live counter is printed as a heartbeat every
HEARTBEAT_S seconds. The README's first run sat at "[data] · calls 2" in its log for 15 minutes while the teacher
made 50 calls."""

from __future__ import annotations

import io

from rich.console import Console

from promptomatix.backends.base import ProgressEvent
from promptomatix.cli import progress_view
from promptomatix.cli.progress_view import ProgressView
from promptomatix.data import generate_synthetic
from promptomatix.lm.fake import FakeLM, prompt_text
from tests.test_data_synthetic import SPEC, obedient
from tests.test_pipeline import TASK, rows, task_answer, teacher_answer


def test_synthetic_generation_reports_each_batch_and_each_round() -> None:
    heard: list[tuple[str, bool]] = []
    rep = generate_synthetic(SPEC, 30, teacher=FakeLM(default=obedient), seed=1, batch_size=5, max_workers=4,
                             on_progress=lambda message, live: heard.append((message, live)))  # fmt: skip
    assert rep.batches == 6
    live = [m for m, is_live in heard if is_live]
    assert len(live) == 6 and "6 of 6 teacher batches answered (round 1)" in live[-1]
    assert [m for m, is_live in heard if not is_live] == [
        "synthetic rows: 30 of 30 kept after round 1 (6 teacher batches)"
    ]


def test_a_run_reports_the_synthetic_rows_as_data_steps(tmp_path, monkeypatch) -> None:
    from promptomatix import process_input

    monkeypatch.setattr("promptomatix.run.progress.TICK_S", 0.0)  # a fake run is faster than the throttle

    def teacher(messages):
        text = prompt_text(messages)
        return (
            obedient(messages) if "Write " in text or "Answer with exactly one of" in text else teacher_answer(messages)
        )

    events: list[ProgressEvent] = []
    clients = {
        "task": FakeLM(default=task_answer, model="fake/task"),
        "teacher": FakeLM(default=teacher, model="fake/teacher"),
    }
    process_input(human_input=TASK, sessions_dir=str(tmp_path / "s"), sample_data=rows(6), synthetic_data_size=30,
                  clients=clients, progress=events.append)  # fmt: skip
    data = [e for e in events if e.stage == "data"]
    assert any(not e.live and "kept after round 1" in e.message for e in data)
    answered = [e for e in data if e.live and "teacher batches answered" in e.message]
    assert answered and answered[0].calls >= 2  # with the run's calls so far (the spec's, the batch's)


def _event(message: str, live: bool, calls: int) -> ProgressEvent:
    return ProgressEvent(stage="data", message=message, live=live, calls=calls, cost_usd=0.0)


def test_a_log_gets_a_heartbeat_line_a_terminal_only_its_status_line(monkeypatch) -> None:
    for terminal in (False, True):
        out = io.StringIO()
        monkeypatch.setattr(progress_view, "err_console", lambda out=out: Console(file=out, width=200))
        clock = iter([0.0, 5.0, 31.0, 40.0, 62.0])
        monkeypatch.setattr(progress_view.time, "monotonic", lambda clock=clock: next(clock))
        view = ProgressView(True, None, None)  # reads the clock once: 0.0
        view.terminal = terminal
        view(_event("building train / valid / test data", False, 2))  # 5.0: a step, printed
        view(_event("synthetic rows: 3 of 33 teacher batches answered (round 1)", True, 9))  # 31.0: 26 s after
        view(_event("synthetic rows: 9 of 33 teacher batches answered (round 1)", True, 20))  # 40.0: 35 s after
        view(_event("synthetic rows: 12 of 33 teacher batches answered (round 1)", True, 27))  # 62.0: 22 s after
        lines = out.getvalue().splitlines()
        if terminal:
            assert lines == ["[data] · calls 2 · $0.0000 · building train / valid / test data"]
        else:
            assert lines == [
                "[data] · calls 2 · $0.0000 · building train / valid / test data",
                "[data] · calls 20 · $0.0000 · synthetic rows: 9 of 33 teacher batches answered (round 1)",
            ]
