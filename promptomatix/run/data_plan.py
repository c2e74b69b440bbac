"""What a dry run says about the data, decided on the rows the real run would keep.

The real run validates and dedups the user's rows before it tops them up with teacher-written rows; the dry run
decided on the raw count. So it showed rows the run drops and passed runs the run refuses (F5), and with rows
dropped below `--synthetic-data-size` it built the data for real, paying the teacher for synthetic rows inside
`--dry-run` while its estimate said "data 0" (F13). Validation is free: the dry run does it first, plans the
synthetic rows on the usable count and never calls the teacher for data. The validation is the builder's own
(`builder.validate_sources`), so the dry run keeps, skips and refuses what the run does, in the same words.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from promptomatix.data.builder import Sources
    from promptomatix.task import TaskSpec

Row = dict[str, Any]


def synthetic_need(cfg: Any, user: dict[str, Any], n_usable: int) -> int:
    """How many rows the teacher would write: the usable user rows topped up to `--synthetic-data-size` (none when
    the user gave explicit train/valid splits)."""
    if "train_rows" in user or "valid_rows" in user:
        return 0
    return max(0, cfg.synthetic_data_size - n_usable)


def planned_sizes(cfg: Any, n_rows: int, n_test_given: int) -> tuple[int, int, int]:
    """train / valid / test once the synthetic rows exist; a given test split is the test, as in `build_data`."""
    from promptomatix.data.splits import resolve_sizes

    if not n_test_given:
        return resolve_sizes(n_rows, train=cfg.train_data_size, valid=cfg.valid_data_size, test=cfg.test_data_size,
                             train_ratio=cfg.train_ratio)  # fmt: skip
    tr, va, _ = resolve_sizes(n_rows, train=cfg.train_data_size, valid=cfg.valid_data_size, test=0,
                              train_ratio=cfg.train_ratio)  # fmt: skip
    return tr, va, n_test_given


def plan_note(need: int, calls: int, sizes: tuple[int, int, int], usable: Sources) -> list[str]:
    """The dry run's account of the data it would build: the builder's notes on the rows it keeps, then the plan."""
    tr, va, te = sizes
    notes = [*usable.report.notes]
    given_test = f" (and {len(usable.test)} given test rows)" if usable.test else ""
    notes.append(f"dry run: the teacher would write {need} synthetic rows (about {calls} teacher calls; roughly 4-5 s "
                 f"a row on the embedded model), then split {len(usable.user) + need} rows{given_test} into train {tr} "
                 f"/ valid {va} / test {te}; nothing was generated (the rows shown are yours, as the run would keep "
                 "them)")  # fmt: skip
    return notes


def test_label_note(spec: TaskSpec, user: dict[str, Any]) -> str | None:
    """Labels that only the given test rows have are left out of the held-out test (the model is never told
    about them, so it could not answer them): name them, and the `--labels` that keeps them."""
    from promptomatix.task.task_types import label_kind

    name, labels = spec.label_field, spec.labels
    if name is None or not labels or label_kind(spec.task_type) != "single":
        return None
    out = spec.field(name)
    extra: Counter[str] = Counter()
    for row in user.get("test_rows") or []:
        value = row.get(name) if isinstance(row, dict) else None
        if value is not None and str(value).strip() and out.canonical_label(value) is None:
            extra[str(value).strip()] += 1
    if not extra:
        return None
    found = ", ".join(f"{label!r} ({n} row{'s' if n != 1 else ''})" for label, n in extra.most_common(8))
    return (f"the test rows hold labels outside the label set ({', '.join(labels)}): {found}; those rows are left "
            f"out of the held-out test (the model is not told about these labels). To score them, pass --labels "
            f"{','.join([*labels, *list(extra)[:8]])}")  # fmt: skip
