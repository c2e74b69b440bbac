"""`--dspy-module pot`: DSPy's ProgramOfThought on a small arithmetic task, through the dspy backend.

The fake task model writes the code (it reads the two numbers of the question, never multiplies them) and then
answers with whatever the code printed; the interpreter is real: Deno (the `deno` extra) running Pyodide (from the
npm registry, cached by Deno after the first run). So a right answer means the sandbox executed the program.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from promptomatix.backends.base import RunContext
from promptomatix.backends.prompt import PromptCandidate
from promptomatix.lm.boundary import LMBoundary
from promptomatix.lm.fake import FakeLM
from promptomatix.metrics import MetricsManager
from promptomatix.task.models import FieldSpec, TaskSpec
from promptomatix.task.task_types import TaskType
from tests.backend_fakes import GuardedData

pytest.importorskip("dspy")
deno = pytest.importorskip("deno", reason='needs the deno extra: pip install -e ".[deno]"')

SPEC = TaskSpec(
    description="Multiply two numbers",
    task_type=TaskType.REASONING,
    input_fields=[FieldSpec(name="question")],
    output_fields=[FieldSpec(name="answer")],
    initial_prompt="Compute the product asked for.",
)


def rows(pairs):
    return [{"question": f"What is {a} times {b}?", "answer": str(a * b)} for a, b in pairs]


def requested_fields(messages):
    m = re.search(r"Respond with a JSON object in the following order of fields: (.+)", messages[-1]["content"], re.S)
    return re.findall(r"`([^`]+)`", m.group(1)) if m else []


def coder(messages):
    """Writes `a * b` as code for the code step; for the answer step, copies the code's output."""
    text = messages[-1]["content"]
    out = {}
    for name in requested_fields(messages):
        if name == "generated_code":
            a, b = re.search(r"What is (\d+) times (\d+)\?", text).groups()
            out[name] = f"```python\nresult = {a} * {b}\nresult\n```"
        elif name == "answer":
            printed = re.search(r"code_output.*?\n\s*\"?(\d+)", text, re.S)
            out[name] = printed.group(1) if printed else "unknown"
        else:
            out[name] = "Multiply the two numbers in code."
    return json.dumps(out)


def test_program_of_thought_runs_the_written_code_in_the_real_sandbox():
    from promptomatix.backends.dspy_backend import DSPyOptimizer, DSPySettings

    task = FakeLM(default=coder, model="fake/coder")
    boundary = LMBoundary({"task": task, "teacher": task})
    ctx = RunContext(boundary=boundary, metrics=MetricsManager(output_fields=["answer"], lambda_penalty=0),
                     spec=SPEC, num_threads=2, seed=0)  # fmt: skip
    settings = DSPySettings(module="pot", optimizer="labeled", max_labeled_demos=0)
    result = DSPyOptimizer(settings).compile(
        ctx, PromptCandidate(instructions=SPEC.initial_prompt), GuardedData(rows([(17, 3)]), rows([(23, 7)]))
    )
    assert result.valid_raw == 1.0 and result.initial_valid_raw == 1.0  # 161, printed by the sandbox
    assert result.best_predict({"question": "What is 19 times 21?"})["answer"] == "399"
    code_steps = [c for c in task.calls if "generated_code" in requested_fields(c["messages"])]
    assert code_steps and '"module": "pot"' in json.dumps(result.program_json)  # exportable as the pot program


def test_the_sandbox_runner_needs_no_deno_land_download(tmp_path, monkeypatch):
    """DSPy's runner imports one helper from deno.land (unreachable here, while npm is); ours has it inlined."""
    from dspy.primitives import python_interpreter as pi

    from promptomatix.backends.dspy_factories import _DENO_LAND_IMPORT, _patched_runner

    monkeypatch.setenv("PROMPTOMATIX_MODELS_DIR", str(tmp_path / "models"))
    original = Path(pi.__file__).with_name("runner.js")
    patched = _patched_runner(original)
    assert _DENO_LAND_IMPORT in original.read_text()
    text = patched.read_text()
    assert "https://deno.land" not in text and "async function* readLines(reader)" in text
    assert text.count("npm:pyodide") == original.read_text().count("npm:pyodide")  # Pyodide still from npm
    assert _patched_runner(original) == patched  # cached by content
