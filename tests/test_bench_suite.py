"""The suite report: paired verdicts from stored parts, pooled over seeds, and the goals of issue 14 checked from
them (no model runs: parts are written by hand)."""

import json
import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from benchmarks.suite_report import END, START, load_parts, markers, suite_markdown, write_results_section  # noqa: E402


def _part(out: Path, task: str, seed: int, method: str, init: list[int], opt: list[int], calls: int) -> None:
    pairs = enumerate(zip(init, opt, strict=True))
    rows = [{"index": i, "score": o, "initial_score": a, "error": False} for i, (a, o) in pairs]
    mean = lambda xs: {"mean": sum(xs) / len(xs), "n": len(xs)}  # noqa: E731
    result = {"task": task, "seed": seed, "method": method, "test": mean(opt), "initial_test": mean(init),
              "test_rows": rows, "search_calls": calls, "calls": calls + 2 * len(rows), "time_s": 10.0}
    doc = {"meta": {"machine": {"git_commit": "abcdef123"}}, "result": result}
    (out / f"{task}-s{seed}-{method}.json").write_text(json.dumps(doc))


def test_pooled_verdicts_and_goals(tmp_path: Path):
    for seed in (0, 1):
        # trec: meta wins 30 rows, loses 2; the peer moves nothing and spends 4x the calls
        _part(tmp_path, "trec", seed, "meta", [0] * 40 + [1] * 60, [1] * 30 + [0] * 10 + [0] * 2 + [1] * 58, 100)
        _part(tmp_path, "trec", seed, "peer-miprov2", [1] * 50 + [0] * 50, [1] * 50 + [0] * 50, 400)
        # sentiment: meta loses 25 rows and wins 2: significantly worse
        _part(tmp_path, "sentiment", seed, "meta", [1] * 80 + [0] * 20, [0] * 25 + [1] * 55 + [1] * 2 + [0] * 18, 90)
        # ... but under a third of the peer's calls it matches the peer: the cost goal is met by meta-third
        _part(tmp_path, "sentiment", seed, "peer-miprov2", [1] * 50 + [0] * 50, [1] * 80 + [0] * 20, 99)
        _part(tmp_path, "sentiment", seed, "meta-third", [1] * 80 + [0] * 20, [1] * 80 + [0] * 20, 33)
    assert len(load_parts(tmp_path)) == 10
    md = suite_markdown(tmp_path)
    start, end = markers(tmp_path)
    assert md.startswith(start) and md.endswith(end)
    trec = next(line for line in md.splitlines() if line.startswith("| trec |"))
    assert "better +0.280 (60/4/136" in trec and trec.endswith("| 100 / - / 400 | yes (meta) |")
    senti = next(line for line in md.splitlines() if line.startswith("| sentiment |"))
    assert "**worse** -0.230" in senti
    assert "significantly better than the initial prompt (pooled paired test, p < 0.05): **1 of 2** (trec)" in md
    assert "Significantly worse on any task or seed: **sentiment**" in md
    assert senti.endswith("| 90 / 33 / 99 | yes (meta-third) |")
    assert "≤ 1/3 of its search calls: **2** (trec, sentiment)" in md
    assert "| trec@s1 | 0.600 | 0.880 | better +0.280 (30/2/68" in md


def test_write_results_section_replaces_between_markers(tmp_path: Path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# R\n\nintro\n")
    write_results_section(results, f"{START}\nfirst\n{END}")
    write_results_section(results, f"{START}\nsecond\n{END}")
    text = results.read_text()
    assert text.count(START) == 1 and "second" in text and "first" not in text and text.startswith("# R\n\nintro")


def test_a_suite_on_another_model_keeps_a_section_of_its_own(tmp_path: Path):
    """Rebuilding the qwen suite's tables must not overwrite §7 (results/suite), nor the other way round."""
    results = tmp_path / "RESULTS.md"
    results.write_text(f"# R\n\n{START}\nsmall model\n{END}\n")
    qwen = tmp_path / "suite-qwen"
    qwen.mkdir()
    _part(qwen, "spam", 0, "meta", [0] * 10, [1] * 10, 50)
    md = suite_markdown(qwen)
    assert "Models: None (teacher the same)" in md  # hand-written parts name no model
    write_results_section(results, md, qwen)
    write_results_section(results, suite_markdown(qwen), qwen)
    write_results_section(results, f"{START}\nsmall model, rebuilt\n{END}")
    text = results.read_text()
    q_start, _ = markers(qwen)
    assert text.count(q_start) == 1 and "small model, rebuilt" in text and "| spam |" in text
    assert text.index(START) < text.index(q_start)


def test_a_refused_part_is_compared_on_no_seed(tmp_path: Path):
    """Spam s1's meta ⅓ was refused (no search fits): its mean came from s0 alone while the peer's came from s0 and
    s1, and the report called the cost goal met."""
    _part(tmp_path, "spam", 0, "meta", [0] * 100, [0] * 100, 300)
    _part(tmp_path, "spam", 0, "peer-miprov2", [0] * 100, [1] * 68 + [0] * 32, 270)
    _part(tmp_path, "spam", 0, "meta-third", [1] * 59 + [0] * 41, [1] * 59 + [0] * 41, 65)
    _part(tmp_path, "spam", 1, "peer-miprov2", [0] * 100, [1] * 50 + [0] * 50, 199)
    doc = {"meta": {"machine": {"git_commit": "abcdef123"}},
           "result": {"task": "spam", "seed": 1, "method": "meta-third", "error": "ConfigurationError: no search fits"}}
    (tmp_path / "spam-s1-meta-third.json").write_text(json.dumps(doc))
    spam = next(line for line in suite_markdown(tmp_path).splitlines() if line.startswith("| spam |"))
    assert spam.endswith("| no |"), spam  # 0.59 on s0 against the peer's 0.68 on s0, not its s0-s1 mean of 0.59


def test_an_unknown_method_is_refused_before_any_part_runs(capsys):
    """`--methods peer` (for `peer-miprov2`) ran Promptomatix's default backend for 2 hours as a part named `peer`."""
    import pytest

    from benchmarks.suite import main

    with pytest.raises(SystemExit) as e:
        main(["run", "--methods", "peer", "--tasks", "squad", "--seeds", "1", "--out", "/nonexistent/never-written"])
    assert e.value.code == 2
    assert "unknown method(s) ['peer']; suite methods: meta, peer-miprov2" in capsys.readouterr().err
