"""What a dry run says about the data, decided on the rows the real run would keep.

The real run validates and dedups the user's rows before it tops them up with teacher-written rows; the dry run
decided on the raw count. So it showed rows the run drops and passed runs the run refuses (F5), and with rows
dropped below `--synthetic-data-size` it built the data for real, paying the teacher for synthetic rows inside
`--dry-run` while its estimate said "data 0" (F13). Validation is free: the dry run does it first, plans the
synthetic rows on the usable count and never calls the teacher for data.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from promptomatix.task import TaskSpec

Row = dict[str, Any]


@dataclass
class Usable:
    """The user's rows as the data builder would keep them: the given test rows (validated first, so a train row
    that repeats one is dropped), the `--data` rows, and the account of what was skipped and why."""

    test: list[Row] = field(default_factory=list)
    user: list[Row] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    raw_user: int = 0


def usable_rows(spec: TaskSpec, user: dict[str, Any]) -> Usable:
    """Validate the test rows, then the `--data` rows, against one `seen` set, as `build_data` does."""
    from promptomatix.data.validate import describe_places, validate_rows

    out, seen = Usable(), {}
    for name in ("test", "user"):
        rows = user.get(f"{name}_rows")
        if rows is None:
            continue
        places: dict[tuple[str, str], list[str]] = {}
        out.notes.extend(n for n in getattr(rows, "notes", ()) if n not in out.notes)
        kept, bad = validate_rows(spec, rows, seen=seen, places=places)
        setattr(out, name, kept)
        out.skipped.update({f"{name}: {reason}": n for reason, n in bad.items()})
        for (source, reason), where in places.items():
            s = "s" if len(where) != 1 else ""
            out.notes.append(f"{source or f'{name} rows'}: {len(where)} row{s} skipped ({describe_places(where)}: "
                             f"{reason})")  # fmt: skip
    out.raw_user = len(user.get("user_rows") or [])
    return out


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


def plan_note(need: int, calls: int, sizes: tuple[int, int, int], usable: Usable) -> list[str]:
    """The dry run's account of the data it would build, and a warning when none of the user's rows is usable."""
    tr, va, te = sizes
    notes = [*usable.notes]
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


def refuse_unusable(spec: TaskSpec, user: dict[str, Any], usable: Usable) -> None:
    """The user gave rows and validation keeps none of them: the run would rest on teacher-written rows only (a
    dry run said all was well; the run paid for them, or failed when the teacher wrote none). Refused in both."""
    from promptomatix.errors import DataError

    if not usable.raw_user or usable.user or "train_rows" in user or "valid_rows" in user:
        return
    skips = "; ".join(n for n in usable.notes if " skipped (" in n)[:400]
    hint = "fix those rows, or check --input-fields/--output-fields"
    name, labels = spec.label_field, spec.labels
    if name and labels and any(k.endswith("label not in label set") for k in usable.skipped):
        found = list(dict.fromkeys(str(r.get(name)).strip() for r in user["user_rows"]
                                   if isinstance(r, dict) and r.get(name) not in (None, "")))  # fmt: skip
        hint = (f"the label set is {', '.join(labels)} and the data's labels are {', '.join(found[:8])}: pass "
                "--labels with the data's labels, or leave --labels out")  # fmt: skip
    raise DataError(f"no usable data rows: none of the {usable.raw_user} rows of the data is usable ({skips})",
                    hint=hint)  # fmt: skip
