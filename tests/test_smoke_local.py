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
