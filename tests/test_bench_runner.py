"""The benchmark runner, the engine benchmark and the concurrency benchmark with fake LMs (offline, fast)."""

from __future__ import annotations

import json

import pytest

from benchmarks import concurrency, engine
from benchmarks.engine import fake_clients, synthetic_rows
from benchmarks.peer import make_signature
from benchmarks.report import markdown_report, prompt_words, results_table
from benchmarks.run import main, run_benchmark

TASK = {
    "name": "toy",
    "description": "Classify the sentiment of a movie review as positive or negative",
    "task_type": "classification",
    "input_fields": ["review"],
    "output_fields": ["label"],
    "labels": ["positive", "negative"],
    "train": synthetic_rows(6),
    "valid": synthetic_rows(6, 100),
    "test": synthetic_rows(8, 200),
}
ROW_KEYS = {"task", "method", "test", "initial_test", "calls", "cached_calls", "tokens", "time_s", "prompt_words"}


def fakes(task_name, method):
    return fake_clients(0.0)


def quiet(_msg):
    pass


def test_runner_writes_json_and_markdown(tmp_path):
    methods = ["initial", "meta", "dspy-labeled"]
    doc = run_benchmark(
        [TASK], methods, clients=fakes, out_dir=tmp_path, log=quiet, command="python -m benchmarks.run --test"
    )
    assert [r["method"] for r in doc["results"]] == methods
    for r in doc["results"]:
        assert r.keys() >= ROW_KEYS, r.keys()
        assert not r.get("error")
        assert {"mean", "ci_low", "ci_high", "n"} <= r["test"].keys()
        assert r["test"]["n"] == len(TASK["test"])
        assert r["test"]["ci_low"] <= r["test"]["mean"] <= r["test"]["ci_high"]
    by = {r["method"]: r for r in doc["results"]}
    assert by["initial"]["test"]["mean"] == pytest.approx(0.5)  # the fake answers 'positive' to the initial prompt
    assert by["initial"]["test"] == by["meta"]["initial_test"]  # taken from the meta run, not re-scored
    assert by["meta"]["test"]["mean"] == pytest.approx(1.0)  # the teacher's rewrite says 'complains'
    assert by["dspy-labeled"]["n_demos"] > 0
    assert by["meta"]["calls"] > 0 and by["meta"]["tokens"] > 0
    # why the initial prompt was replaced is in the part: the paired rows and the sign test of each finalist
    assert by["meta"]["confirmations"] and all("sign test p" in c for c in by["meta"]["confirmations"])
    # and what the search tried, stage by stage: the teacher's rewrite ('complains') screened at 1.0
    tried = by["meta"]["candidates"]
    assert tried and {"origin", "minibatch_raw", "valid_raw", "note"} <= tried[0].keys()
    assert any(c["minibatch_raw"] == pytest.approx(1.0) for c in tried)

    files = sorted(p.suffix for p in tmp_path.iterdir())
    assert files == [".json", ".md"]
    saved = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert {"meta", "tasks", "results"} <= saved.keys()
    assert saved["meta"]["machine"]["nproc"] and saved["tasks"]["toy"]["sizes"] == {"train": 6, "valid": 6, "test": 8}
    md = next(tmp_path.glob("*.md")).read_text()
    assert "| toy | meta | 1.000 [1.00, 1.00] | 0.500 [0.50, 0.50] | +0.500 |" in md
    assert "python -m benchmarks.run --test" in md


def test_initial_alone_runs_meta_with_zero_rounds(tmp_path):
    doc = run_benchmark([TASK], ["initial"], clients=fakes, out_dir=None, log=quiet)
    (row,) = doc["results"]
    assert row["method"] == "initial" and row["test"]["mean"] == pytest.approx(0.5)
    assert "0 rounds" in row["note"]


def test_a_failing_method_is_recorded_not_fatal(tmp_path):
    def clients(task_name, method):  # no fake for dspy-labeled: it gets the (unknown) model string and fails
        return None if method == "dspy-labeled" else fake_clients(0.0)

    doc = run_benchmark(
        [TASK],
        ["meta", "dspy-labeled", "dspy-bootstrap"],
        model="local/no-such-model",
        clients=clients,
        out_dir=tmp_path,
        log=quiet,
    )
    by = {r["method"]: r for r in doc["results"]}
    assert "no-such-model" in by["dspy-labeled"]["error"]
    assert by["meta"]["test"]["mean"] == pytest.approx(1.0)
    assert by["dspy-bootstrap"]["test"] is not None  # the run went on after the failure
    assert "**failed**" in results_table(doc["results"])
    assert "**failed**" in markdown_report(doc)
    assert json.loads(next(tmp_path.glob("*.json")).read_text())["results"][1]["error"]


def test_initial_is_an_error_when_meta_fails():
    def clients(task_name, method):
        raise RuntimeError("boom")

    doc = run_benchmark([TASK], ["initial", "meta"], clients=clients, out_dir=None, log=quiet)
    assert [r["method"] for r in doc["results"]] == ["initial", "meta"]
    assert doc["results"][1]["error"] == "RuntimeError: boom"
    assert "meta run failed" in doc["results"][0]["error"]


def test_a_task_model_that_never_answers_is_a_failed_row_naming_the_cause():
    broken = {"task": engine.FakeLM(default=None, model="fake/broken"), "teacher": fake_clients(0.0)["teacher"]}
    doc = run_benchmark([TASK], ["meta"], clients=lambda t, m: broken, out_dir=None, log=quiet)
    (row,) = doc["results"]
    assert "test" not in row  # no scores that look like a result
    assert row["error"].startswith("ModelUnavailableError: the task model could not answer")


def test_peer_runs_plain_dspy_mipro_on_the_fake(tmp_path):
    doc = run_benchmark([TASK], ["peer-miprov2"], clients=fakes, out_dir=None, log=quiet)
    (row,) = doc["results"]
    assert not row.get("error"), row.get("error")
    assert row["initial_test"]["mean"] == pytest.approx(0.5)
    assert row["test"]["n"] == len(TASK["test"]) and row["calls"] > len(TASK["test"])
    assert row["settings"]["auto"] == "light"


def test_peer_signature_uses_a_literal_for_labels():
    import typing

    sig = make_signature(TASK)
    assert typing.get_args(sig.output_fields["label"].annotation) == ("positive", "negative")
    assert sig.instructions == TASK["description"]
    plain = make_signature({**TASK, "labels": None})
    assert plain.output_fields["label"].annotation is str


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="unknown method"):
        run_benchmark([TASK], ["nope"], out_dir=None, log=quiet)
    with pytest.raises(SystemExit):
        main(["--methods", "nope"])


def test_prompt_words_counts_instructions_and_demos():
    assert prompt_words("Classify it.", []) == 2
    assert prompt_words("Classify it.", [{"review": "good film", "label": "positive", "_predictor": "x"}]) == 2 + 3 + 2


def test_engine_benchmark_reports_a_ratio():
    rows = engine.engine_benchmark(["meta"], latency=0.01, num_threads=4, sizes=(6, 6, 8))
    (row,) = rows
    assert row["calls"] > 0
    assert row["ideal_s"] == pytest.approx(row["calls"] * 0.01 / 4, abs=1e-3)
    assert row["ratio"] >= 1.0  # cannot beat perfect overlap
    assert row["optimized_test"] == pytest.approx(1.0)
    assert "overhead_s_at_zero_latency" in row
    assert "| meta | 10 ms | 4 |" in engine.markdown(rows)


def test_concurrency_benchmark_with_a_fake_client():
    from promptomatix.lm.fake import FakeLM

    res = concurrency.measure(
        "fake", calls=4, repeats=1, clients={"task": FakeLM(default="ok", latency=0.05, model="fake/slow")}
    )
    assert res["sequential_s"] >= 0.2 and res["concurrent_s"] < res["sequential_s"]
    assert res["ratio"] > 1.5
    assert "speed-up" in concurrency.markdown(res)


def test_several_data_splits_get_a_summary_of_the_deltas():
    from benchmarks.report import seeds_table

    def row(task, method, init, test):
        return {"task": task, "method": method, "initial_test": {"mean": init}, "test": {"mean": test}}

    rows = [
        row("trec@s0", "initial", 0.2, 0.2), row("trec@s0", "meta", 0.2, 0.5),
        row("trec@s1", "meta", 0.1, 0.1), row("trec@s2", "meta", 0.3, 0.2),
        {"task": "trec@s3", "method": "meta", "error": "boom"},
    ]  # fmt: skip
    table = seeds_table(rows)
    line = next(ln for ln in table.splitlines() if ln.startswith("| trec | meta"))
    assert "| 4 (1 failed) |" in line and "+0.300, +0.000, -0.100" in line
    assert "| +0.067 | 1 / 1 / 1 |" in line
    assert seeds_table([row("trec", "meta", 0.2, 0.5)]) == ""  # one split: no summary
