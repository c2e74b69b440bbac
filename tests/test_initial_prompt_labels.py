"""What is scored is what is exported: a user's initial prompt for a classification task that does not name the
label set gets the task's label line (once, in the built-in prompt's words), the run says so, and the exported
text of every version names every label in its instructions. A prompt that names them is left byte-identical."""

from __future__ import annotations

import csv
import json
import re

import pytest
from typer.testing import CliRunner

from promptomatix import process_input
from promptomatix.backends.contract import names
from promptomatix.sessions import SessionStore
from promptomatix.task import SpecOverrides, infer_task_spec
from tests.test_pipeline import GIVEN, TASK, fakes

LIMIT_S = 240  # each test takes seconds with the fake models; a hang fails instead of blocking the suite
LABELS = ["negative", "positive"]
NO_LABELS = "Decide how the reviewer felt about the film."
LINE = "Answer with exactly one of: {}."


pytestmark = pytest.mark.usefixtures("time_limit")  # conftest.py: SIGALRM after LIMIT_S


def system_text(exported: str) -> str:
    """The instructions of an exported text prompt (demos show labels too, but they are examples, not the set)."""
    match = re.match(r"\[system\]\n(.*?)(?:\n\n\[(?:user|assistant)\]|\Z)", exported, re.S)
    assert match, exported
    return match.group(1)


def names_every_label(text: str) -> bool:
    return all(names(text, lab) for lab in LABELS)


def _run(tmp_path, prompt: str, clients=None):
    return process_input(raw_input=TASK, initial_prompt=prompt, clients=clients or fakes()[0],
                         sessions_dir=str(tmp_path / "s"), **GIVEN)  # fmt: skip


def test_process_input_adds_the_label_line_and_every_export_names_the_labels(tmp_path):
    r = _run(tmp_path, NO_LABELS)
    line = LINE.format(", ".join(r.labels))
    assert sorted(r.labels) == LABELS
    assert r.task_spec["initial_prompt"] == f"{NO_LABELS}\n{line}"  # appended once, in the built-in words
    note = f"added the label line: '{line}' because your prompt did not name the labels"
    assert any(n.startswith(note) for n in r.notes), r.notes
    assert not any(a.startswith("added the label line") for a in r.assumptions)  # a note, said once
    store = SessionStore(tmp_path / "s")
    v = store.load(r.session_id).versions[-1]
    assert any(n.startswith(note) for n in v.settings["notes"])  # kept with the version
    assert names_every_label(system_text(r.initial_prompt))  # what the initial prompt was scored with
    assert names_every_label(system_text(store.export(r.session_id, "text")))  # the best version's export


def test_a_winning_rewrite_that_drops_the_labels_still_exports_them(tmp_path):
    """The teacher's winning prompt never names the labels; because the initial prompt now does, the search keeps
    the label line in every candidate, so the exported best version names them."""
    terse = "Mark it by whether the review complains."

    def teacher(messages):
        text = "\n".join(m["content"] for m in messages)
        return json.dumps({"prompt": terse}) if '{"prompt"' in text else "{}"

    clients, _task, _teacher = fakes()
    clients["teacher"].default = teacher
    r = _run(tmp_path, NO_LABELS, clients)
    assert terse in r.best_prompt and r.version == 1
    exported = SessionStore(tmp_path / "s").export(r.session_id, "text")
    assert exported == r.best_prompt and names_every_label(system_text(exported))


@pytest.mark.parametrize("prompt", ["Is the review positive or negative?", "Say Negative or Positive, nothing else."])
def test_a_prompt_that_names_the_labels_is_left_byte_identical(tmp_path, prompt):
    r = _run(tmp_path, prompt)
    assert r.task_spec["initial_prompt"] == prompt
    assert system_text(r.initial_prompt) == prompt
    assert not any("label line" in n for n in [*r.notes, *r.assumptions])


def test_the_label_line_is_added_once_and_only_for_labels_the_prompt_misses():
    given = SpecOverrides(task_type="classification", input_fields=["review"], output_fields=["label"],
                          labels=LABELS, initial_prompt="Be positively careful.")  # fmt: skip
    spec = infer_task_spec(TASK, teacher=None, given=given)
    assert spec.initial_prompt == "Be positively careful.\n" + LINE.format("negative, positive")  # 'positively' ≠
    again = infer_task_spec(TASK, teacher=None, given=given.model_copy(update={"initial_prompt": spec.initial_prompt}))
    assert again.initial_prompt == spec.initial_prompt  # not twice
    assert not any("label line" in a for a in again.assumptions)
    untyped = SpecOverrides(task_type="generation", input_fields=["review"], output_fields=["summary"],
                            initial_prompt=NO_LABELS)  # fmt: skip
    assert infer_task_spec(TASK, teacher=None, given=untyped).initial_prompt == NO_LABELS  # no label set: as is


def test_cli_optimize_reports_the_added_line_and_exports_the_labels(tmp_path, monkeypatch):
    from promptomatix.cli.app import app

    script = {
        "task": {"rules": [[["complains", "awful"], {"label": "negative"}]], "default": {"label": "positive"}},
        "teacher": {"rules": [['{"prompt"', {"prompt": "Mark it by whether the review complains."}]], "default": {}},
    }
    (tmp_path / "fake.json").write_text(json.dumps(script))
    monkeypatch.setenv("PROMPTOMATIX_FAKE_LM", str(tmp_path / "fake.json"))
    monkeypatch.setenv("PROMPTOMATIX_SESSIONS_DIR", str(tmp_path / "sessions"))
    data = tmp_path / "reviews.csv"
    with open(data, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "label"])
        for i in range(24):
            w.writerow([f"{'great wonderful' if i % 2 == 0 else 'awful boring'} film number {i}", LABELS[i % 2 == 0]])
    runner = CliRunner()
    r = runner.invoke(app, ["optimize", TASK, "--data", str(data), "--initial-prompt", NO_LABELS],
                      catch_exceptions=False)  # fmt: skip
    assert r.exit_code == 0, r.output
    flat = " ".join(r.output.split())
    assert "note: added the label line: 'Answer with exactly one of:" in flat
    assert "because your prompt did not name the labels" in flat
    (summary,) = SessionStore(tmp_path / "sessions").list()
    out = runner.invoke(app, ["sessions", "export", summary.session_id, "--format", "text"], catch_exceptions=False)
    assert out.exit_code == 0 and names_every_label(system_text(out.stdout.strip("\n")))


def test_the_dspy_backend_scores_and_exports_the_added_label_line_too(tmp_path):
    from tests.test_run_stages import DSPY, dspy_fakes

    clients, _task, _teacher = dspy_fakes()
    r = process_input(raw_input=TASK, initial_prompt=NO_LABELS, clients=clients, sessions_dir=str(tmp_path / "s"),
                      **GIVEN, **DSPY)  # fmt: skip
    exported = SessionStore(tmp_path / "s").export(r.session_id, "text")
    assert r.backend == "dspy" and exported == r.best_prompt
    assert f"{NO_LABELS}\n" in r.task_spec["initial_prompt"] and "Answer with exactly one of:" in exported
    assert names_every_label(system_text(exported))
