"""Smoke tests on the real embedded model, so that path cannot rot. Few on purpose: a local call costs seconds."""

import json
import subprocess
import sys
from typing import Literal

import pytest

pytestmark = pytest.mark.smoke


@pytest.fixture(scope="module")
def boundary():
    pytest.importorskip("xllamacpp")
    from promptomatix.lm.factory import ModelSettings, build_boundary

    return build_boundary(ModelSettings())


def test_models_run_prints_a_real_answer():
    code = "import sys\nfrom promptomatix.cli.app import main\nmain(sys.argv[1:])\n"
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "models",
            "run",
            "smollm2-135m",
            "Say hello.",
            "--json",
            "--max-tokens",
            "12",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["answer"].strip()
    assert out["completion_tokens"] > 0 and out["prompt_tokens"] > 0 and out["latency_s"] > 0


def test_json_schema_constrains_the_embedded_model(boundary):
    schema = {
        "type": "object",
        "properties": {"sentiment": {"type": "string", "enum": ["positive", "negative"]}},
        "required": ["sentiment"],
    }
    text = boundary.role("task").chat(
        [{"role": "user", "content": "Review: 'A dull, boring mess.' Sentiment?"}],
        json_schema=schema,
        max_tokens=24,
    )
    assert json.loads(text)["sentiment"] in {"positive", "negative"}


def test_dspy_predict_with_literal_labels_parses_on_the_embedded_model(boundary):
    import dspy

    from promptomatix.lm.dspy_engine import make_dspy_lm

    class Sentiment(dspy.Signature):
        """Is the text positive or negative?"""

        text: str = dspy.InputField()
        sentiment: Literal["positive", "negative"] = dspy.OutputField()

    with dspy.context(lm=make_dspy_lm(boundary.role("task"), max_tokens=32), adapter=dspy.JSONAdapter()):
        pred = dspy.Predict(Sentiment)(text="I loved every minute of it.")
    assert pred.sentiment in {"positive", "negative"}


def test_one_meta_round_on_the_embedded_model(tmp_path):
    """The whole meta path on the real model (teacher call, demos, minibatch, valid, confirmation, held-out)."""
    pytest.importorskip("xllamacpp")
    from promptomatix.api import process_input

    good = ["A moving, beautifully acted film.", "Sharp, funny and warm.", "A triumph from start to finish.",
            "Delightful and clever.", "The best film of the year.", "Gorgeous and heartfelt."]  # fmt: skip
    bad = ["A dull, boring mess.", "Tedious and far too long.", "The plot makes no sense at all.",
           "Flat acting and a lazy script.", "I walked out halfway.", "A waste of a good cast."]  # fmt: skip
    rows = [{"text": t, "sentiment": "positive"} for t in good] + [{"text": t, "sentiment": "negative"} for t in bad]
    split = {"train_data": rows[0:2] + rows[6:8], "valid_data": rows[2:4] + rows[8:10],
             "test_data": rows[4:6] + rows[10:12]}  # fmt: skip
    r = process_input(
        raw_input="Classify the sentiment of a movie review as positive or negative",
        input_fields=["text"], output_fields=["sentiment"], labels=["positive", "negative"],
        task_type="classification", rounds=1, candidates_per_round=2, minibatch_size=2,
        sessions_dir=str(tmp_path), **split,
    )  # fmt: skip
    m = r.metrics
    assert m.optimized_prompt_score >= m.initial_prompt_score  # never below the initial prompt on valid
    assert m.optimized_test_score is not None and m.initial_test_score is not None
    assert m.usage_by_role["task"]["calls"] > 0 and m.usage_by_role["teacher"]["calls"] >= 1
