"""Every script in examples/ runs with fake models: each has `main(clients=None, sessions_dir=None)`, which the
test calls with scripted clients so the examples cannot rot (run as scripts, they use the embedded model)."""

from __future__ import annotations

import importlib.util
import itertools
import json
import re
import threading
from pathlib import Path

import pytest

from promptomatix.lm.fake import FakeLM
from promptomatix.sessions import SessionStore

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NEGATIVE_WORDS = ("awful", "boring", "never", "worse", "hated", "dull", "mess", "slow", "walked out", "wooden")


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_clients() -> dict[str, FakeLM]:
    """A task model that reads sentiment off a few words once told to, and a teacher that writes rows/prompts."""
    counter = itertools.count()
    lock = threading.Lock()

    def task(messages):
        system, user = messages[0]["content"], messages[-1]["content"].lower()
        label = "positive"
        if "complain" in system and any(w in user for w in NEGATIVE_WORDS):
            label = "negative"
        if "mixed" in system and " but " in user:
            label = "mixed"
        return json.dumps({"label": label, "sentiment": label})

    def teacher(messages):
        text = "\n".join(m["content"] for m in messages)
        if '{"feedback"' in text:
            return json.dumps({"feedback": [{"quote": "", "comment": "Treat sarcastic praise as negative."}]})
        if '{"prompt"' in text and "- Treat sarcastic praise" in text:  # a refine on the feedback: a new prompt
            return json.dumps({"prompt": "Negative if it complains or is sarcastic; mixed if but."})
        if '{"prompt"' in text:
            return json.dumps({"prompt": "Answer negative when the review complains; mixed when it says but."})
        if '"examples"' in text:  # a synthetic batch: n rows with the requested labels, in order
            n = int(re.search(r"Write (\d+) new", text).group(1))
            keys = [k.strip() for k in re.search(r'"examples": \[\{([^}]*)\}', text).group(1).split(",")]
            order = re.search(r"in order: ([^\n]*)\.", text)
            labels = [x.strip() for x in order.group(1).split(",")] if order else ["positive"] * n
            rows = []
            for label in labels[:n]:
                with lock:
                    i = next(counter)
                words = "awful boring" if label == "negative" else "lovely warm"
                rows.append({k: (label if k == keys[-1] else f"A {words} film, review number {i}.") for k in keys})
            return json.dumps({"examples": rows})
        return "{}"  # spec questions: fall back to the description's keywords

    return {"task": FakeLM(default=task, model="fake/task"), "teacher": FakeLM(default=teacher, model="fake/teacher")}


@pytest.mark.parametrize("name", ["quickstart", "own_csv", "custom_metric", "feedback_loop"])
def test_example_runs_with_fake_models(name, tmp_path, capsys):
    result = load(name).main(clients=make_clients(), sessions_dir=str(tmp_path))
    out = capsys.readouterr().out
    assert result.session_id in out and result.best_prompt in out
    session = SessionStore(tmp_path).load(result.session_id)
    assert session.status == "completed" and session.versions


def test_every_example_is_covered():
    scripts = {p.stem for p in EXAMPLES.glob("*.py")}
    assert scripts == {"quickstart", "own_csv", "custom_metric", "feedback_loop"}


def test_own_csv_uses_the_file_only(tmp_path, capsys):
    result = load("own_csv").main(clients=make_clients(), sessions_dir=str(tmp_path))
    assert sum(result.data_report["split_sizes"].values()) == 30
    assert "synthetic" not in result.data_report["sources"]
    assert set(result.labels) == {"positive", "negative"}


def test_custom_metric_gives_partial_credit(tmp_path, capsys):
    module = load("custom_metric")
    assert module.partial_credit({"label": "mixed"}, {"label": "positive"})[0] == 0.5
    assert module.partial_credit({"label": "negative"}, {"label": "positive"})[0] == 0.0
    result = module.main(clients=make_clients(), sessions_dir=str(tmp_path))
    assert result.labels == ["positive", "negative", "mixed"]
    # half credit shows up in the scores: the initial prompt says positive for every row
    assert result.metrics.initial_prompt_score_raw not in (0.0, 1.0)


def test_feedback_loop_applies_human_and_generated_feedback(tmp_path, capsys):
    result = load("feedback_loop").main(clients=make_clients(), sessions_dir=str(tmp_path))
    session = SessionStore(tmp_path).load(result.session_id)
    assert [v.version for v in session.versions] == [1, 2] and session.versions[1].parent == 1
    assert [(f.source, f.status) for f in session.feedback] == [("human", "applied"), ("generated", "applied")]
    assert result.feedback_applied == ["fb1", "fb2"]
