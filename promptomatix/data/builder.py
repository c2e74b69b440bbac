"""Assemble the run's data: user rows, synthetic top-up, dedup, and held-out splits, with a full account.

Decisions: test rows are validated first so a row that is also in train is dropped from train (no leakage);
when user rows and synthetic rows are mixed, the test split is drawn from user rows first (real data is the
better judge), but never from the rows the teacher was shown as examples when it writes rows
(`synthetic_checks.teacher_examples`), and synthetic rows that near-copy a user or test row are rejected;
explicitly given train/valid/test sets are kept as given.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from promptomatix.data.intake import Intake, skip_summary
from promptomatix.data.splits import (
    MIN_ROWS,
    DataSplits,
    Size,
    check_minimums,
    resolve_sizes,
    split_rows,
)
from promptomatix.data.synthetic import SyntheticProgress, estimate_synthetic_calls, generate_synthetic
from promptomatix.data.synthetic_checks import shown_rows
from promptomatix.data.synthetic_report import check_agreement, synthetic_account, synthetic_test_note
from promptomatix.data.validate import label_counts
from promptomatix.errors import DataError
from promptomatix.lm.types import ChatModel
from promptomatix.task.models import TaskSpec
from promptomatix.task.task_types import label_kind

log = logging.getLogger(__name__)

Row = dict[str, Any]


class SyntheticSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requested: int
    generated: int
    accepted: int
    rejected: dict[str, int] = Field(default_factory=dict)
    failed_batches: dict[str, int] = Field(default_factory=dict)
    rounds: int = 0
    batches: int = 0
    stop_reason: str = "complete"
    checked: int = 0  # rows relabelled blind by the teacher (classification)
    agreed: int = 0  # of those, rows whose blind label matched the one asked for
    unchecked: int = 0  # kept without a check (the relabel call gave no label)


class DataReport(BaseModel):
    """Where every row came from and where it went; shown to users and stored in the session."""

    model_config = ConfigDict(extra="forbid")

    sources: dict[str, int] = Field(default_factory=dict)
    skipped: dict[str, int] = Field(default_factory=dict)
    synthetic: SyntheticSummary | None = None
    split_sizes: dict[str, int] = Field(default_factory=dict)
    test_sources: dict[str, int] = Field(default_factory=dict)
    label_distribution: dict[str, dict[str, int]] = Field(default_factory=dict)
    unused: int = 0
    notes: list[str] = Field(default_factory=list)
    seed: int = 0


def _ids(rows: Sequence[Row]) -> set[int]:
    return {id(r) for r in rows}


def build_data(
    spec: TaskSpec,
    *,
    teacher: ChatModel | None,
    user_rows: Sequence[Row] | None = None,
    train_rows: Sequence[Row] | None = None,
    valid_rows: Sequence[Row] | None = None,
    test_rows: Sequence[Row] | None = None,
    synthetic_size: int = 30,
    seed: int = 0,
    train_size: Size = None,
    valid_size: Size = None,
    test_size: Size = None,
    train_ratio: float | None = None,
    batch_size: int = 5,
    max_workers: int = 4,
    verify: bool = False,
    max_batches: int | None = None,
    skipped: Mapping[str, int] | None = None,
    notes: Sequence[str] | None = None,
    labels_given: bool = False,
    on_progress: SyntheticProgress | None = None,
) -> tuple[DataSplits, DataReport]:
    """Validate and mix the data, then split it. `skipped` and `notes` carry the loaders' account into the report.

    Raises DataError when the splits are too small for a verdict (see `splits.MIN_ROWS`); `test_size=0` is the
    user's explicit choice of no held-out test and is reported as such. `labels_given`: the label set is the
    user's (`--labels`), so rows all outside it are a wrong command line (DataUsageError, exit 2).
    """
    sizes = {"train": train_size, "valid": valid_size, "test": test_size, "train_ratio": train_ratio}
    src = validate_sources(spec, user_rows=user_rows, train_rows=train_rows, valid_rows=valid_rows,
                           test_rows=test_rows, seed=seed, sizes=sizes, skipped=skipped, notes=notes,
                           labels_given=labels_given)  # fmt: skip
    report, intake, label = src.report, src.intake, src.intake.label
    test_given, valid_given, train_given, user = src.test, src.valid, src.train, src.user
    if train_rows is not None or valid_rows is not None:
        if user:
            train_given += user
            report.notes.append(f"{len(user)} user rows added to the given train rows")
        train, valid, test = _explicit(train_given, valid_given, test_given, label, seed, report, test_size == 0,
                                       valid_size=valid_size)  # fmt: skip
    else:
        synth = _synthesize(spec, teacher, user, test_given, synthetic_size, seed, report, batch_size,
                            max_workers, max_batches, verify, on_progress)  # fmt: skip
        shown = shown_rows(spec, user, held_out=test_given) if synth else set()  # only rows the teacher saw
        train, valid, test = _mixed(user, synth, test_given, label, seed, sizes, report, shown)
    if len(train) + len(valid) + len(test) == 0:
        intake.refuse(labels_given)
    report.skipped = dict(intake.dropped)
    splits = DataSplits(train, valid, test, input_fields=spec.input_names, output_fields=spec.output_names)
    report.split_sizes = splits.sizes
    _check_enough(report, test_size, synthetic_size, teacher is not None)
    _finish_report(report, label, train, valid, test, getattr(teacher, "model", None))
    return splits, report


@dataclass
class Sources:
    """The user's rows as the builder keeps them, by role, with the report so far (sources, skips, notes)."""

    test: list[Row]
    valid: list[Row]
    train: list[Row]
    user: list[Row]
    report: DataReport
    intake: Intake


def validate_sources(
    spec: TaskSpec,
    *,
    user_rows: Sequence[Row] | None = None,
    train_rows: Sequence[Row] | None = None,
    valid_rows: Sequence[Row] | None = None,
    test_rows: Sequence[Row] | None = None,
    seed: int = 0,
    sizes: dict[str, Any] | None = None,
    skipped: Mapping[str, int] | None = None,
    notes: Sequence[str] | None = None,
    labels_given: bool = False,
) -> Sources:
    """Validate every source, test first (a duplicate of a test row is removed from train/valid, never the other
    way round). Free: the dry run calls it too. Raises the builder's errors: a source that only repeats the test,
    and rows given of which none is usable (before any teacher row is paid for)."""
    report = DataReport(seed=seed, skipped=dict(skipped or {}), notes=list(notes or []))
    label = spec.label_field if label_kind(spec.task_type) == "single" else None
    intake = Intake(spec, report, label, seed, dict(sizes or {}), dropped=Counter(report.skipped))
    test, valid = intake.take("test", test_rows), intake.take("valid", valid_rows)
    train, user = intake.take("train", train_rows), intake.take("user", user_rows)
    if any(rows for rows in (user_rows, train_rows, valid_rows)) and not (user or train or valid):
        intake.refuse(labels_given)
    return Sources(test, valid, train, user, report, intake)


def _finish_report(
    report: DataReport,
    label: str | None,
    train: list[Row],
    valid: list[Row],
    test: list[Row],
    teacher_model: str | None,
) -> None:
    """Label counts per split and the closing notes, logged too so a run's log tells where its data came from."""
    if label:
        report.label_distribution = {
            name: label_counts(rows, label) for name, rows in (("train", train), ("valid", valid), ("test", test))
        }
    if not test:
        report.notes.append(
            "no held-out test (test size 0): the final scores use the valid split, which also chose the prompt"
        )
    if note := synthetic_test_note(report.test_sources, report.synthetic, teacher_model):
        report.notes.append(note)
    for note in report.notes:
        log.info("data: %s", note)


def _check_enough(report: DataReport, test_size: Size, synthetic_size: int, has_teacher: bool) -> None:
    """Stop before a run whose verdict would rest on nothing ("test 0.000 n=0")."""
    problem = check_minimums(report.split_sizes, no_test=test_size == 0)
    if problem is None:
        return
    want = sum(MIN_ROWS.values())
    sizes, rest = report.split_sizes, MIN_ROWS["train"] + MIN_ROWS["valid"]
    if isinstance(test_size, int) and 0 < test_size < MIN_ROWS["test"]:
        hint = f"pass --test-data-size {MIN_ROWS['test']} or more, or --test-data-size 0 for no held-out test"
    elif isinstance(test_size, int) and test_size >= MIN_ROWS["test"] and sum(sizes.values()) >= want:
        # the rows were there: --test-data-size took them (it said "add rows to the data")
        total = sum(sizes.values())
        hint = (
            f"pass a smaller --test-data-size: at most {total - rest} of the {total} rows, so train and valid get some"
        )
    elif report.synthetic is not None and report.synthetic.accepted < report.synthetic.requested:
        s = report.synthetic
        problem += f"; the teacher wrote {s.accepted} of {s.requested} synthetic rows ({s.stop_reason})"
        hint = "add rows to the data, or use a stronger --teacher-model"
    elif has_teacher and synthetic_size < 3 * want:
        hint = f"add rows to the data, or pass --synthetic-data-size {max(30, 3 * want)} to have the teacher write more"
    else:
        hint = "add rows to the data (or pass --test-data-size 0 to run without a held-out test)"
    if skips := skip_summary(report):
        problem += f"; {skips}"
    raise DataError(problem, hint=hint)


def _synthesize(
    spec: TaskSpec, teacher: ChatModel | None, user: list[Row], test_given: list[Row], synthetic_size: int, seed: int,
    report: DataReport, batch_size: int, max_workers: int, max_batches: int | None, verify: bool,
    on_progress: SyntheticProgress | None = None,
) -> list[Row]:  # fmt: skip
    """Top the user rows up to `synthetic_size` with teacher-written rows, recording the outcome."""
    need = max(0, synthetic_size - len(user))
    if need and teacher is None:
        report.notes.append(f"no teacher model: {need} synthetic rows not generated")
    if not need or teacher is None:
        return []
    gen = generate_synthetic(
        spec,
        need,
        teacher=teacher,
        seed=seed,
        batch_size=batch_size,
        max_workers=max_workers,
        max_batches=max_batches,
        existing=[*test_given, *user],
        held_out=test_given,
        verify=verify,
        on_progress=on_progress,
    )
    report.sources["synthetic"] = len(gen.rows)
    copied = ("generated", "rejected", "failed_batches", "rounds", "batches", "stop_reason", "checked", "agreed",
              "unchecked")  # fmt: skip
    report.synthetic = SyntheticSummary(requested=need, accepted=len(gen.rows), **{k: getattr(gen, k) for k in copied})
    report.notes.append(synthetic_account(report.synthetic))
    check_agreement(report.synthetic, len(spec.labels or []), getattr(teacher, "model", None))
    if len(gen.rows) < need:
        report.notes.append(f"synthetic data: {len(gen.rows)} of {need} rows ({gen.stop_reason})")
    return gen.rows


def _explicit(
    train: list[Row],
    valid: list[Row],
    test: list[Row],
    label: str | None,
    seed: int,
    report: DataReport,
    no_test: bool = False,
    valid_size: Size = None,
) -> tuple[list[Row], list[Row], list[Row]]:
    """Respect user-given splits; carve only what is missing (valid: `valid_size` rows when given),
    deterministically, and say so."""
    if not valid:
        t_n = 0 if test or no_test else None
        train, valid, carved = split_rows(train, label_field=label, valid=valid_size, test=t_n, seed=seed)
        report.notes.append(f"valid split carved from the given train rows ({len(valid)} rows)")
        if carved:
            test = carved
            report.notes.append(f"no test rows given: held out {len(carved)} rows of train as test")
        report.test_sources = {"carved" if carved else "given": len(test)} if test else {}
        return train, valid, test
    if not test and not no_test:
        pool = train + valid
        _, _, t_n = resolve_sizes(len(pool))
        _, _, carved = split_rows(pool, label_field=label, train=len(pool) - t_n, valid=0, test=t_n, seed=seed)
        held = _ids(carved)
        train = [r for r in train if id(r) not in held]
        valid = [r for r in valid if id(r) not in held]
        test = carved
        report.notes.append(f"no test rows given: held out {len(carved)} rows of train+valid as test")
    report.test_sources = {"given" if report.sources.get("test") else "carved": len(test)}
    return train, valid, test


def _mixed(
    user: list[Row],
    synth: list[Row],
    test_given: list[Row],
    label: str | None,
    seed: int,
    sizes: dict[str, Any],
    report: DataReport,
    shown: set[int] | None = None,
) -> tuple[list[Row], list[Row], list[Row]]:
    """Split user, synthetic and given test rows; user rows in `shown` (their ids: rows the teacher was shown as
    examples) never go to the held-out test, so nothing the teacher wrote from derives from it."""
    n = len(user) + len(synth) + len(test_given)
    tr_n, va_n, te_n = resolve_sizes(
        n, train=sizes["train"], valid=sizes["valid"], test=sizes["test"], train_ratio=sizes["train_ratio"]
    )
    if test_given:
        te_n = len(test_given)
        tr_n, va_n, _ = resolve_sizes(
            n - te_n, train=sizes["train"], valid=sizes["valid"], test=0, train_ratio=sizes["train_ratio"]
        )
    te_need = max(0, te_n - len(test_given))
    # Real rows judge best: draw the held-out test from user rows first, but keep some for training.
    free = [r for r in user if id(r) not in (shown or set())]
    te_user = min(te_need, len(user) // 2 if synth else len(user), len(free))
    te_synth = min(te_need - te_user, len(synth))
    u_rest, _, u_test = split_rows(free, label_field=label, train=len(free) - te_user, valid=0, test=te_user, seed=seed)
    u_rest = [r for r in user if id(r) in (shown or set())] + u_rest
    s_rest, _, s_test = split_rows(
        synth, label_field=label, train=len(synth) - te_synth, valid=0, test=te_synth, seed=seed
    )
    rest = u_rest + s_rest
    # Train takes every remaining row unless the user fixed its size (rows short in test go to train).
    tr_fixed = tr_n if sizes["train"] is not None or sizes["train_ratio"] is not None else None
    train, valid, _ = split_rows(rest, label_field=label, train=tr_fixed, valid=min(va_n, len(rest)), test=0, seed=seed)
    test = test_given + u_test + s_test
    report.test_sources = {
        k: v for k, v in (("given", len(test_given)), ("user", len(u_test)), ("synthetic", len(s_test))) if v
    }
    report.unused = len(rest) - len(train) - len(valid)
    if report.unused:
        report.notes.append(
            f"{report.unused:,} rows unused: splits capped at train {len(train)}, valid {len(valid)}, test "
            f"{len(test)} (change with --train-data-size/--valid-data-size/--test-data-size)"
        )
    return train, valid, test


def estimate_data_calls(
    *,
    n_user_rows: int = 0,
    synthetic_size: int = 30,
    batch_size: int = 5,
    verify: bool = False,
    explicit_splits: bool = False,
    worst_case: bool = False,
) -> int:
    """Teacher calls data building will make (for dry runs); worst case includes every top-up batch."""
    if explicit_splits:
        return 0
    need = max(0, synthetic_size - n_user_rows)
    return estimate_synthetic_calls(need, batch_size=batch_size, verify=verify, worst_case=worst_case)
