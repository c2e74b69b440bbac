"""The example plugin package (examples/plugin_example), pip-installed into a temporary directory (the dev venv is
not touched) and used from the CLI in subprocesses: its backend, task type and metrics, model client, meta-prompt,
CLI command and run-event subscriber each work through `optimize`, without a line of Promptomatix or of the plugin
changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "plugin_example"
DATA = EXAMPLE / "yesno.jsonl"
SPEC_FLAGS = ["--input-fields", "question", "--output-fields", "answer", "--output-format", "yes or no"]


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> Path:
    """`pip install --target` a copy of the example (its build files stay out of the repo)."""
    tmp = tmp_path_factory.mktemp("plugin")
    src = tmp / "src"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(src)]
    out = subprocess.run(pip, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:  # no index to fetch the build backend from: build with the venv's setuptools
        out = subprocess.run([*pip, "--no-build-isolation"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return target


def cli(plugin_path: Path, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(plugin_path), "PROMPTOMATIX_SESSIONS_DIR": str(tmp_path / "sessions"),
            "EXAMPLE_PLUGIN_EVENTS": str(tmp_path / "events.jsonl"), **env}  # fmt: skip
    full.pop("PROMPTOMATIX_LOAD_PLUGINS", None)
    if "PROMPTOMATIX_FAKE_LM" not in env:
        full.pop("PROMPTOMATIX_FAKE_LM", None)
    return subprocess.run([sys.executable, "-m", "promptomatix", *args], env=full, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def events(tmp_path: Path) -> list[dict]:
    path = tmp_path / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_plugins_lists_what_the_example_registered(plugin_path, tmp_path):
    out = cli(plugin_path, tmp_path, "plugins", "--json")
    assert out.returncode == 0, out.stderr
    example = next(p for p in json.loads(out.stdout) if p["name"] == "example")
    assert example["distribution"] == "promptomatix-example-plugin" and example["error"] is None
    assert example["registered"] == {
        "backends": ["suffix_search"],
        "task_types": ["yesno"],
        "metrics": ["yesno"],
        "models": ["example"],
        "meta_prompts": ["example_checklist"],
        "commands": ["example-hello"],
        "events": ["on_run_event"],
    }


def test_the_plugin_command_runs(plugin_path, tmp_path):
    out = cli(plugin_path, tmp_path, "example-hello", "--name", "Ann")
    assert out.returncode == 0 and out.stdout.strip() == "Hello Ann, from the example plugin."


def test_optimize_through_the_plugin_backend_task_type_metrics_and_model_client(plugin_path, tmp_path):
    out = cli(plugin_path, tmp_path, "optimize", "Answer the question yes or no", "--task-type", "yes-no",
              "--backend", "suffix_search", "--model", "example/rules", "--data", str(DATA), *SPEC_FLAGS,
              "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["backend"] == "suffix_search" and r["task_type"] == "yesno"  # the alias resolved to the plugin's type
    # The model client says "Yep"/"Nope" unless the prompt asks for exactly yes or no; the type's training metric
    # gives those half credit, so the backend picks the suffix that asks for the exact word.
    assert r["instructions"].endswith("Answer with exactly yes or no.")
    assert r["metrics"]["initial_prompt_score_raw"] == 0.5 and r["metrics"]["optimized_prompt_score_raw"] == 1.0
    # The plugin's final metric (register_metrics, final=True) is strict: "Yep" is wrong on the held-out split.
    assert r["metrics"]["initial_test_score"]["mean"] == 0.0 and r["metrics"]["optimized_test_score"]["mean"] == 1.0
    names = [e["name"] for e in events(tmp_path)]
    assert names[0] == "run_started" and names[-1] == "run_finished" and "candidate_scored" in names
    assert {e["session_id"] for e in events(tmp_path)} == {r["session_id"]}


def test_the_meta_backend_runs_the_plugin_meta_prompt_and_feedback_is_an_event(plugin_path, tmp_path):
    script = tmp_path / "fake.json"
    script.write_text(json.dumps({
        "task": {"rules": [[["exactly yes or no", "blue"], {"answer": "yes"}], [["exactly yes or no"], {"answer": "no"}],
                           ["blue", {"answer": "Yep"}]], "default": {"answer": "Nope"}},
        "teacher": {"rules": [["EXAMPLE-CHECKLIST", {"prompt": "Checklist: 1. Read it. 2. Answer with exactly yes or no."}]],
                    "default": {"prompt": "Answer the question."}},
    }))  # fmt: skip
    out = cli(plugin_path, tmp_path, "optimize", "Answer the question yes or no", "--task-type", "yesno",
              "--data", str(DATA), *SPEC_FLAGS, "--rounds", "1", "--json",
              PROMPTOMATIX_FAKE_LM=str(script))  # fmt: skip
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["backend"] == "simple_meta_prompt" and "Checklist" in r["instructions"]
    session = json.loads((tmp_path / "sessions" / r["session_id"] / "session.json").read_text())
    origins = [c["origin"] for c in session["versions"][-1]["candidates"]]
    assert "example_checklist" in origins  # the pinned plugin template had its slot in the round
    fb = cli(plugin_path, tmp_path, "feedback", "add", r["session_id"], "--comment", "too long")
    assert fb.returncode == 0, fb.stderr
    last = events(tmp_path)[-1]
    assert last["name"] == "feedback_added" and last["payload"]["comment"] == "too long"


def test_a_typo_in_a_plugin_backend_lists_every_registered_backend(plugin_path, tmp_path):
    out = cli(plugin_path, tmp_path, "optimize", "Answer yes or no", "--backend", "sufix_search", "--dry-run")
    assert out.returncode != 0
    assert "unknown backend 'sufix_search'" in out.stderr and "did you mean suffix_search?" in out.stderr
    assert "registered: simple_meta_prompt, dspy, suffix_search" in out.stderr
