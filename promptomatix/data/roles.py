"""Sources that hold more than one split: a directory of data files (`train.csv`, `test.csv`, …), a JSON file
of named lists (`{"train": [...], "test": [...]}`) or a `DatasetDict` saved with `save_to_disk`. Each file, list
or saved split is read as the split its name says; the rest are rows to split as usual. Before, a directory was
handed to `datasets`, which read one format and only its `train` split, a JSON file's `test` list was ignored,
and a saved DatasetDict's `test` split too: all without a word.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: a file stem's word (or a JSON key) → the split it names
SPLIT_WORDS = {"train": "train", "training": "train", "valid": "valid", "validation": "valid", "val": "valid",
               "dev": "valid", "test": "test", "testing": "test"}  # fmt: skip
DATA_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl")
#: files `datasets.save_to_disk` writes: such a directory is a saved dataset, read by `datasets`
SAVED_DATASET = ("dataset_info.json", "state.json", "dataset_dict.json")


@dataclass(frozen=True)
class Part:
    """One file of a multi-file source, or one named list of a JSON file of splits."""

    path: Path
    key: str | None = None  # a JSON file's top-level list to read ("test"); None: the file's rows as usual
    label: str | None = None  # how messages name it when its own name says too little (a saved split: "dd/test")

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        return f"{self.path.name}[{self.key}]" if self.key else self.path.name


def data_files(directory: Path) -> list[Path]:
    """The CSV/TSV/JSON/JSONL files of a directory, sorted; none for a saved dataset (`datasets` reads those)."""
    if any((directory / name).exists() for name in SAVED_DATASET):
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in DATA_SUFFIXES
                  and not p.name.startswith("."))  # fmt: skip


def left_out_note(label: str, directory: Path, read: Sequence[Path]) -> str | None:
    """The files of a directory that were not read as data (a README, a parquet file), as one note."""
    left = sorted(p.name for p in directory.iterdir() if p.is_file() and p not in read and not p.name.startswith("."))
    return f"{label}: left out {', '.join(left)} (not .csv/.tsv/.json/.jsonl)" if left else None


def split_of(name: str) -> str | None:
    """The split a file stem or key names: `test.csv`, `reviews_test.jsonl`, `validation` → test, test, valid."""
    return next((SPLIT_WORDS[w] for w in re.split(r"[^a-z]+", name.lower()) if w in SPLIT_WORDS), None)


def source_roles(source: str | Path) -> tuple[dict[str, list[Part]], list[str]] | None:
    """The parts of a source that names splits, by role (train / valid / test / user), and one note per decision;
    None when the source names no split (it is read as one source, as before)."""
    path = Path(source)
    if path.is_dir() and (path / "dataset_dict.json").is_file():
        return _saved_roles(path)
    if path.is_dir():
        files = data_files(path)
        parts: dict[Path | str, str | None] = {f: split_of(f.stem) for f in files}
        label, what = f"{path.name}/", "file"
    elif path.suffix.lower() == ".json" and path.is_file():
        keys = _json_split_keys(path)
        parts = {k: SPLIT_WORDS.get(k.lower()) for k in keys}
        label, what = path.name, "list"
    else:
        return None
    if not any(role in ("valid", "test") for role in parts.values()):
        return None
    roles: dict[str, list[Part]] = {}
    for item, role in parts.items():
        part = Part(item) if isinstance(item, Path) else Part(path, item)
        roles.setdefault(role or "train", []).append(part)
    notes = _read_as(label, roles)
    unnamed = [k.name if isinstance(k, Path) else k for k, r in parts.items() if r is None]
    if path.is_dir() and (left := left_out_note(label, path, [p for p in parts if isinstance(p, Path)])):
        notes.append(left)
    if unnamed:
        notes.append(f"{label}: {', '.join(unnamed)} names no split; read as train ({what}s named "
                     "train/valid/test set the splits)")  # fmt: skip
    return roles, notes


def _read_as(label: str, roles: dict[str, list[Part]]) -> list[str]:
    return [f"{label}: {', '.join(p.name for p in ps)} read as the {role} split" for role, ps in roles.items()]


def _saved_roles(path: Path) -> tuple[dict[str, list[Part]], list[str]] | None:
    """A saved DatasetDict's splits by role, as for a directory of files: its `test` split is the held-out test
    and `validation` the valid split (only `train` was read, and a test carved from it). A split that names none
    (imdb's `unsupervised`) is left out, with a note, when a train split exists; else it is read as train."""
    try:
        splits = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8")).get("splits", [])
    except (OSError, ValueError, AttributeError):
        return None  # `datasets` reports what is wrong with it
    found = {str(s): SPLIT_WORDS.get(str(s).lower()) for s in splits if (path / str(s)).is_dir()}
    if not any(role in ("valid", "test") for role in found.values()):
        return None  # one split to read, as before (`train`)
    has_train = "train" in found.values()
    roles: dict[str, list[Part]] = {}
    left, unlabeled = [], [s for s, role in found.items() if role in ("valid", "test") and _unlabeled(path / s)]
    for split, role in found.items():
        if split in unlabeled:
            continue
        if role is None and has_train:
            left.append(split)
            continue
        roles.setdefault(role or "train", []).append(Part(path / split, label=f"{path.name}/{split}"))
    label = f"{path.name}/"
    notes = [
        f"{label}: split {', '.join(p.path.name for p in ps)} read as the {role} split" for role, ps in roles.items()
    ]
    if left:
        notes.append(f"{label}: left out split{'s' if len(left) > 1 else ''} {', '.join(left)} "
                     "(its name is not train/valid/test)")  # fmt: skip
    if unlabeled:
        notes.append(f"{label}: left out split {', '.join(unlabeled)} (every label is -1: a hidden test set)")
    if not any(role in ("valid", "test") for role in roles):
        return None  # read as before: the train split
    return roles, notes


def _unlabeled(split_dir: Path) -> bool:
    """True for a split whose class labels are all -1 (GLUE's test splits hide their labels so): used as the held-out
    test, it would score every prompt against "-1". Only a split with a ClassLabel column is opened."""
    try:
        features = json.loads((split_dir / "dataset_info.json").read_text(encoding="utf-8")).get("features", {})
        columns = [k for k, v in features.items() if isinstance(v, dict) and v.get("_type") == "ClassLabel"]
    except (OSError, ValueError, AttributeError):
        return False
    if not columns:
        return False
    try:
        import datasets  # only for a saved dataset with class labels, which `datasets` wrote

        ds = datasets.load_from_disk(str(split_dir))
        return all(set(ds.unique(c)) <= {-1} for c in columns)
    except Exception:  # unreadable here: the loader reports it when it reads the split
        return False


def _json_split_keys(path: Path) -> list[str]:
    """The top-level lists of a JSON object file whose names include a split word; [] for anything else."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return []  # the loader reports what is wrong with the file, with its line
    if not isinstance(data, dict):
        return []
    lists = [k for k, v in data.items() if isinstance(v, list) and v and all(isinstance(i, dict) for i in v[:50])]
    return lists if any(split_of(k) for k in lists) else []  # ("labels": [...] or an empty list: not rows)
