"""Jobs files: YAML and JSONL, matrix expansion (top-level × job-level), validation before anything runs, stable keys."""

from __future__ import annotations

import json

import pytest

from promptomatix.batch.jobs import load_jobs
from promptomatix.errors import ConfigurationError


def test_matrix_crosses_jobs_with_top_and_job_level_axes(tmp_path):
    (tmp_path / "rows.csv").write_text("review,label\nok,positive\n")
    path = tmp_path / "jobs.yaml"
    path.write_text(
        "defaults: {max_calls: 50, data: rows.csv}\n"
        "matrix: {seed: [0, 1]}\n"
        "jobs:\n"
        "  - {name: a, raw_input: Classify reviews}\n"
        "  - {name: b, raw_input: Classify questions, matrix: {backend: [simple_meta_prompt, dspy]}}\n"
    )
    jobs = load_jobs(path)
    assert [j.name for j in jobs] == [
        "a[seed=0]", "a[seed=1]",
        "b[seed=0,backend=simple_meta_prompt]", "b[seed=0,backend=dspy]",
        "b[seed=1,backend=simple_meta_prompt]", "b[seed=1,backend=dspy]",
    ]  # fmt: skip
    assert all(j.options["max_calls"] == 50 for j in jobs)
    assert jobs[3].options["backend"] == "dspy" and jobs[3].options["seed"] == 0
    # relative data paths become absolute: a Ray worker runs in another directory
    assert jobs[0].options["data"] == str((tmp_path / "rows.csv").resolve())
    assert len({j.key for j in jobs}) == 6


def test_keys_are_stable_and_change_with_options(tmp_path):
    path = tmp_path / "jobs.jsonl"
    path.write_text(
        '# a comment\n{"raw_input": "Classify reviews", "seed": 1}\n\n{"raw_input": "Summarize", "seed": 1}\n'
    )
    first = load_jobs(path)
    assert [j.name for j in first] == ["job1", "job2"]
    assert [j.key for j in load_jobs(path)] == [j.key for j in first]
    path.write_text('{"raw_input": "Classify reviews", "seed": 2}\n{"raw_input": "Summarize", "seed": 1}\n')
    second = load_jobs(path)
    assert second[0].key != first[0].key and second[1].key == first[1].key


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("jobs:\n  - {name: x, raw_input: t, modle: gpt}\n", "job x: unknown setting 'modle'"),
        ("jobs:\n  - {name: x, raw_input: t, api_key: sk-123}\n", "`api_key` is not a job option"),
        ("jobs:\n  - {name: x, raw_input: t, config_model_api_key: sk-123}\n", "`config_model_api_key` is not a job"),
        ("jobs:\n  - {name: x, raw_input: t, teacher_api_key: sk-123}\n", "`teacher_api_key` is not a job option"),
        ("jobs:\n  - {raw_input: t}\n  - {raw_input: t}\n", "have the same options"),
        ("matrix: {seed: []}\njobs:\n  - {raw_input: t}\n", "must be a non-empty list"),
        ("jobs: [1, 2]\n", "list of mappings"),
        ("job:\n  - {raw_input: t}\n", "unknown top-level keys job"),
        ("jobs:\n  - {raw_input: t, search_type: fast}\n", "search_type"),
        ("jobs: [\n", "not valid YAML"),
        (
            "jobs:\n  - {name: same, raw_input: t, seed: 1}\n  - {name: same, raw_input: t, seed: 2}\n",
            "two jobs are named same",
        ),
        (
            "jobs:\n  - {name: 'same[seed=3]', raw_input: t, max_calls: 40}\n"
            "  - {name: same, raw_input: t, matrix: {seed: [3]}}\n",
            "two jobs are named same[seed=3]",
        ),
    ],
)
def test_bad_jobs_files_fail_at_load_with_the_job_named(tmp_path, body, needle):
    path = tmp_path / "jobs.yaml"
    path.write_text(body)
    with pytest.raises(ConfigurationError) as e:
        load_jobs(path)
    assert needle in str(e.value)


def test_jsonl_line_errors_name_the_line(tmp_path):
    path = tmp_path / "jobs.jsonl"
    path.write_text(json.dumps({"raw_input": "t"}) + "\n{not json\n")
    with pytest.raises(ConfigurationError, match="line 2"):
        load_jobs(path)


def test_relative_data_paths_resolve_next_to_the_jobs_file_even_when_missing(tmp_path, monkeypatch):
    """A missing file stayed relative: the worker read the cwd's file of that name, and the job's key changed once the
    file appeared, so a re-run started a new session instead of resuming the failed one."""
    beside, cwd = tmp_path / "jobs", tmp_path / "elsewhere"
    beside.mkdir(), cwd.mkdir()
    (cwd / "later.csv").write_text("review,label\nok,positive\n")
    monkeypatch.chdir(cwd)
    path = beside / "jobs.yaml"
    path.write_text("jobs:\n  - {name: a, raw_input: Classify reviews, data: later.csv}\n")
    missing = load_jobs(path)[0]
    (beside / "later.csv").write_text("review,label\nok,positive\n")
    present = load_jobs(path)[0]
    assert present.key == missing.key
    assert present.options["data"] == missing.options["data"] == str(beside.resolve() / "later.csv")


def test_a_jobs_file_that_is_not_utf8_is_a_configuration_error_naming_it(tmp_path):
    path = tmp_path / "jobs.yaml"
    path.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(ConfigurationError) as e:
        load_jobs(path)
    message = str(e.value)
    assert str(path) in message and "not UTF-8" in message and "\n" not in message


def test_upstreams_dataset_name_in_a_jobs_file_is_a_hub_name_unless_the_file_is_there(tmp_path):
    """`huggingface_dataset_name: squad_v2` was resolved beside the jobs file into a missing file path."""
    (tmp_path / "rows.csv").write_text("review,label\nok,positive\n")
    path = tmp_path / "jobs.yaml"
    path.write_text("jobs:\n  - {name: hub, raw_input: t, huggingface_dataset_name: squad_v2}\n"
                    "  - {name: file, raw_input: t, huggingface_dataset_name: rows.csv}\n")  # fmt: skip
    hub, local = load_jobs(path)
    assert hub.options["huggingface_dataset_name"] == "squad_v2"  # read as hf:squad_v2 by the run's config
    assert local.options["huggingface_dataset_name"] == str((tmp_path / "rows.csv").resolve())
