"""A batch jobs file: one optimization per entry, with the same options as `optimize`, and a matrix form.

YAML (or JSON) — either a list of jobs, or a mapping::

    defaults: {synthetic_data_size: 20, max_calls: 300}   # options every job starts from
    matrix: {model: [local/smollm2-135m, local/qwen2.5-coder-0.5b], seed: [0, 1]}   # crossed with every job
    jobs:
      - name: sentiment
        raw_input: Classify the sentiment of a movie review
        data: reviews.csv                  # relative paths are relative to the jobs file
      - name: trec
        raw_input: Classify the type of a question
        matrix: {backend: [simple_meta_prompt, dspy]}      # a job's own matrix adds to (and overrides) the top one

JSONL: one job per line (each may carry its own `matrix`); blank lines and lines starting with `#` are skipped.

Every expanded job is validated with `RunConfig.from_kwargs` before anything runs, so a typo stops the batch at
load time with the job's name. A job's key is a hash of its options: editing a job makes it a new job, and
re-running an unchanged file finds the sessions of its jobs again.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptomatix.errors import ConfigurationError, PromptomatixError, UsageError

_NO_CREDENTIALS = "keys never go in job files; set the provider's environment variable or pass --api-key"
#: options that belong to the batch, not to a job.
_BATCH_ONLY = {
    "sessions_dir": "sessions go to the batch's --sessions-dir",
    **dict.fromkeys(("api_key", "model_api_key"), _NO_CREDENTIALS),
    **dict.fromkeys(("teacher_api_key", "config_model_api_key"),
                    "keys never go in job files; pass --teacher-api-key to the batch "
                    "(or set PROMPTOMATIX_TEACHER_API_KEY)"),
    "dry_run": "a batch runs its jobs; use `promptomatix optimize --dry-run` for one",
}
#: options whose value may be a file path relative to the jobs file.
_PATH_OPTIONS = ("data", "local_train_data_path", "local_test_data_path", "huggingface_dataset_name")
_TOP_KEYS = {"defaults", "matrix", "jobs"}


@dataclass(frozen=True)
class Job:
    """One expanded job: a display name, its options (RunConfig kwargs) and a stable key."""

    name: str
    options: dict[str, Any]
    key: str
    index: int = 0
    matrix_values: dict[str, Any] = field(default_factory=dict)


def load_jobs(path: str | Path) -> list[Job]:
    """Read, expand and validate a jobs file (.yaml/.yml/.json/.jsonl)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError) as e:  # the path typed is wrong: exit 2, like `--data nosuch.csv`
        raise UsageError(f"cannot read the jobs file {path} ({e.strerror or e})",
                         hint="pass the path of a .yaml, .json or .jsonl jobs file") from None  # fmt: skip
    except OSError as e:
        raise ConfigurationError(f"cannot read the jobs file {path} ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise ConfigurationError(
            f"{path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})",
            hint="save the jobs file as UTF-8 YAML, JSON or JSONL",
        ) from None
    if path.suffix.lower() == ".jsonl":
        entries, defaults, matrix = _parse_jsonl(path, text), {}, {}
    else:
        defaults, matrix, entries = _parse_document(path, _parse_yaml(path, text))
    jobs = expand(entries, defaults=defaults, matrix=matrix, base_dir=path.parent, source=str(path))
    if not jobs:
        raise ConfigurationError(f"{path} has no jobs", hint="list at least one job under `jobs:`")
    return jobs


def _parse_yaml(path: Path, text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigurationError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', e)})") from None


def _parse_jsonl(path: Path, text: str) -> list[dict[str, Any]]:
    entries = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigurationError(f"{path} line {n}: not valid JSON ({e.msg})") from None
        if not isinstance(entry, dict):
            raise ConfigurationError(f"{path} line {n}: a job is a JSON object of options")
        entries.append(entry)
    return entries


def _parse_document(path: Path, doc: Any) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    if isinstance(doc, list):
        return {}, {}, doc
    if not isinstance(doc, dict):
        raise ConfigurationError(f"{path}: expected a list of jobs or a mapping with `jobs:`")
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise ConfigurationError(
            f"{path}: unknown top-level keys {', '.join(sorted(unknown))}", hint="use defaults, matrix and jobs"
        )
    defaults, matrix, jobs = doc.get("defaults") or {}, doc.get("matrix") or {}, doc.get("jobs")
    if not isinstance(defaults, dict) or not isinstance(matrix, dict):
        raise ConfigurationError(f"{path}: `defaults` and `matrix` are mappings")
    if jobs is None:  # only defaults × matrix: one job per combination
        jobs = [{}]
    if not isinstance(jobs, list) or not all(isinstance(j, dict) for j in jobs):
        raise ConfigurationError(f"{path}: `jobs` is a list of mappings of options")
    return defaults, matrix, jobs


def expand(
    entries: list[dict[str, Any]],
    *,
    defaults: dict[str, Any] | None = None,
    matrix: dict[str, Any] | None = None,
    base_dir: Path | None = None,
    source: str = "jobs",
) -> list[Job]:
    """Cross every entry with the matrix (top-level, then the entry's own), validate, and key each job."""
    jobs: list[Job] = []
    seen: dict[str, str] = {}
    names: set[str] = set()
    for i, entry in enumerate(entries):
        entry = dict(entry)
        base_name = str(entry.pop("name", None) or f"job{i + 1}")
        own = entry.pop("matrix", None) or {}
        combined = {**(matrix or {}), **own}
        for values in _combinations(combined, f"{source}: job {base_name}"):
            options = {**(defaults or {}), **entry, **values}
            name = base_name + (f"[{','.join(f'{k}={v}' for k, v in values.items())}]" if values else "")
            options = _checked(options, name, source, base_dir)
            key = job_key(options)
            if key in seen:
                raise ConfigurationError(
                    f"{source}: jobs {seen[key]} and {name} have the same options", hint="give one a different seed"
                )
            if name in names:  # rows, CSV lines and MLflow prompts are told apart by the name
                raise ConfigurationError(f"{source}: two jobs are named {name}", hint="give each job its own `name:`")
            seen[key] = name
            names.add(name)
            jobs.append(Job(name=name, options=options, key=key, index=len(jobs), matrix_values=values))
    return jobs


def _combinations(matrix: dict[str, Any], where: str) -> list[dict[str, Any]]:
    for k, v in matrix.items():
        if not isinstance(v, list) or not v:
            raise ConfigurationError(f"{where}: matrix entry {k!r} must be a non-empty list")
    keys = list(matrix)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(matrix[k] for k in keys))]


def _checked(options: dict[str, Any], name: str, source: str, base_dir: Path | None) -> dict[str, Any]:
    from promptomatix.config import RunConfig

    for key, why in _BATCH_ONLY.items():
        if key in options:
            raise ConfigurationError(f"{source}: job {name}: `{key}` is not a job option", hint=why)
    if base_dir is not None:
        options = {k: _resolve_path(v, base_dir) if _is_path(k, v, base_dir) else v for k, v in options.items()}
    try:
        RunConfig.from_kwargs(**options)
    except PromptomatixError as e:
        raise ConfigurationError(f"{source}: job {name}: {e.message}", hint=e.hint) from None
    return options


def _is_path(key: str, value: Any, base_dir: Path) -> bool:
    """Whether an option names a file to resolve beside the jobs file. Upstream's `huggingface_dataset_name` is a Hub
    name (`squad_v2`) unless such a file is there: resolved, it became a missing file instead of `hf:squad_v2`."""
    if key not in _PATH_OPTIONS:
        return False
    return key != "huggingface_dataset_name" or (isinstance(value, str) and (base_dir / value).exists())


def _resolve_path(value: Any, base_dir: Path) -> Any:
    """A relative path becomes absolute beside the jobs file, present or not: workers may run elsewhere, a missing
    file must fail naming that place (never read the cwd's file), and the job's key must not change once it exists.
    Only the directory is resolved, so a file that later appears as a symlink keeps the key too."""
    if not isinstance(value, str) or value.startswith("hf:") or Path(value).is_absolute():
        return value
    return os.path.normpath(base_dir.resolve() / value)


def job_key(options: dict[str, Any]) -> str:
    """A short stable hash of a job's options (sorted JSON), so an unchanged job is recognised on a re-run."""
    canonical = json.dumps(options, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]
