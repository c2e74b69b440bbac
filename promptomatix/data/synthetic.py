"""Synthetic examples from the teacher: batched, parallel, validated, deduplicated, balanced, reproducible.

Each batch gets its own seeded diversity hint and its own target labels, so batches differ and classes stay
balanced. Results are processed in batch order (not completion order), so the same seed and the same model
answers give the same rows. Budget exhaustion stops generation and keeps what exists.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from promptomatix.data.synthetic_checks import (
    batch_verdict,
    leak_reason,
    near_duplicate,
    placeholder_reason,
    relabel,
    text_quality_issue,
    tokens,
    without_held_out,
)
from promptomatix.data.synthetic_prompts import (
    SYSTEM,
    batch_prompt,
    batch_schema,
    diversity_hint,
    single_prompt,
    single_schema,
)
from promptomatix.data.synthetic_report import too_noisy
from promptomatix.data.validate import check_row, row_key
from promptomatix.errors import BudgetExceeded, LMCallError
from promptomatix.lm.types import ChatModel
from promptomatix.task.models import TaskSpec
from promptomatix.task.parsing import parse_json_loose
from promptomatix.task.task_types import TaskType

log = logging.getLogger(__name__)

#: Why a teacher-written row is rejected when it rewords a row of the user's data or the held-out test.
NEAR_GIVEN = "near-duplicate of a user or test row"


@dataclass
class SyntheticReport:
    """What generation produced and why rows were rejected; `rows` are valid, unique and balanced."""

    rows: list[dict[str, Any]]
    requested: int
    generated: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    failed_batches: dict[str, int] = field(default_factory=dict)
    rounds: int = 0
    batches: int = 0
    stop_reason: str = "complete"
    hints: list[str] = field(default_factory=list)
    checked: int = 0  # rows whose label the teacher re-derived blind (classification)
    agreed: int = 0  # of those, rows whose blind label matched the one asked for
    unchecked: int = 0  # kept without a check: the relabel call failed or gave no label


@dataclass
class _Plan:
    index: int
    count: int
    labels: list[str]
    hint: str
    single: bool = False  # one labelled example per call (batch_size 1: small local teachers)


@dataclass
class _Result:
    items: list[Any] = field(default_factory=list)
    keep: set[int] | None = None
    failure: str | None = None
    relabels: dict[int, str | None] = field(default_factory=dict)  # item index -> the blind label
    cut: int | None = None  # items from here on were not checked: the budget ran out during the relabels
    budget_hit: bool = False


def _items(answer: Any, spec: TaskSpec) -> list[Any] | None:
    if isinstance(answer, list):
        return answer
    if isinstance(answer, dict):
        if isinstance(answer.get("examples"), list):
            return answer["examples"]
        if any(name in answer for name in spec.input_names):
            return [answer]
        lists = [v for v in answer.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
        if lists:
            return lists[0]
    return None


def _precheck(spec: TaskSpec, item: Any) -> str | None:
    """Why a generated item is unusable before any model looks at it (None: worth a blind relabel)."""
    clean, reason = check_row(spec, item)
    if clean is None:
        return reason or "invalid"
    return text_quality_issue(spec, clean) or placeholder_reason(spec, clean) or leak_reason(spec, clean)


def _run_batch(spec: TaskSpec, teacher: ChatModel, plan: _Plan, verify: bool, relabel_rows: bool = False) -> _Result:
    result = _run_single(spec, teacher, plan) if plan.single else _run_many(spec, teacher, plan)
    if relabel_rows and not result.failure:
        todo = [i for i, item in enumerate(result.items) if _precheck(spec, item) is None]
        groups = [[i] for i in todo] if plan.single else ([todo] if todo else [])  # local: one row per call
        for group in groups:
            try:
                labels = relabel(spec, teacher, [check_row(spec, result.items[i])[0] or {} for i in group])
            except BudgetExceeded:  # keep the rows checked so far; the round stops on `budget_hit`
                result.cut, result.budget_hit = group[0], True
                return result
            result.relabels.update(zip(group, labels, strict=True))
    if verify and result.items and not result.failure:
        items = result.items
        try:
            result.keep = batch_verdict(spec, teacher, items)
        except LMCallError as exc:
            log.warning("verifier for batch %d failed: %s", plan.index, exc)
        if result.keep is None:
            result.failure = "verifier answer unusable (kept the batch)"
    return result


def _run_many(spec: TaskSpec, teacher: ChatModel, plan: _Plan) -> _Result:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": batch_prompt(spec, plan)}]
    try:
        text = teacher.chat(messages, json_schema=batch_schema(spec), temperature=0.8)
    except LMCallError as exc:
        log.warning("synthetic batch %d failed: %s", plan.index, exc)
        return _Result(failure="model error")
    items = _items(parse_json_loose(text), spec)
    if items is None:
        log.info("synthetic batch %d: no JSON examples in %.80r", plan.index, text)
        return _Result(failure="unparseable output")
    return _Result(items=items)


def _run_single(spec: TaskSpec, teacher: ChatModel, plan: _Plan) -> _Result:
    label = plan.labels[0] if plan.labels else None
    # The index keeps two plans with the same hint apart (the response cache); in the system text, where a small
    # teacher copies it less than from the request ("This is batch 22…" was seen in rows).
    system = f"{SYSTEM} (draft {plan.index})"
    messages = [{"role": "system", "content": system}, {"role": "user", "content": single_prompt(spec, plan)}]
    try:
        text = teacher.chat(messages, json_schema=single_schema(spec, label), temperature=0.8, max_tokens=300)
    except LMCallError as exc:
        log.warning("synthetic example %d failed: %s", plan.index, exc)
        return _Result(failure="model error")
    answer = parse_json_loose(text)
    if not isinstance(answer, dict):
        return _Result(failure="unparseable output")
    items = (_items(answer, spec) or [answer])[:1]  # a model may still wrap it as {"examples": [...]}
    if label is not None and spec.label_field and isinstance(items[0], dict):
        items = [{**items[0], spec.label_field: label}]
    return _Result(items=items)


def _label_slots(labels: list[str], counts: Counter[str], cap: int, need: int) -> list[str]:
    """Target labels for the next `need` examples, filling the emptiest classes first."""
    deficit = {lab: max(0, cap - counts[lab]) for lab in labels}
    slots: list[str] = []
    for _ in range(need):
        lab = max(labels, key=lambda x: (deficit[x], -labels.index(x)))
        slots.append(lab)
        deficit[lab] -= 1
    return slots


@dataclass
class _Keeper:
    """Decides each generated item in batch order: every check, then the label cap; counts every reason."""

    spec: TaskSpec
    n: int
    labels: list[str]
    cap: int
    seen: set[str]
    report: SyntheticReport
    given_tokens: list[frozenset[str]] = field(default_factory=list)  # input words of the user and test rows
    counts: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    kept_tokens: list[tuple[Any, frozenset[str]]] = field(default_factory=list)  # (label, input words)

    def take(self, result: _Result) -> None:
        for i, item in enumerate(result.items):
            reason = self._reason(result, i, item)
            if reason:
                self.rejected[reason] += 1

    def _reason(self, result: _Result, i: int, item: Any) -> str | None:
        spec, label = self.spec, self.spec.label_field
        reason = _precheck(spec, item)
        if reason:
            return reason
        if result.cut is not None and i >= result.cut:
            return "not checked (budget reached)"
        clean = check_row(spec, item)[0] or {}
        if result.keep is not None and i not in result.keep:
            return "rejected by verifier"
        if row_key(spec, clean) in self.seen:
            return "duplicate"
        words = tokens(spec, clean)
        if near_duplicate(words, self.given_tokens):  # any label: a reworded test row leaks it whatever its label
            return NEAR_GIVEN
        if near_duplicate(words, [w for lab, w in self.kept_tokens if lab == clean.get(label or "")]):
            return "near-duplicate"
        if result.relabels.get(i) is not None:  # None: the relabel call failed, so the row is unchecked
            self.report.checked += 1
            if result.relabels[i] != clean.get(label or ""):
                return "label disagrees with a blind relabel"
            self.report.agreed += 1
        elif i in result.relabels:
            self.report.unchecked += 1
        if self.labels and self.counts[str(clean[label])] >= self.cap:  # type: ignore[index]
            return "label cap reached"
        if len(self.report.rows) >= self.n:
            return "beyond requested size"
        self.seen.add(row_key(spec, clean))
        self.kept_tokens.append((clean.get(label or ""), words))
        if self.labels:
            self.counts[str(clean[label])] += 1  # type: ignore[index]
        self.report.rows.append(clean)
        return None


def _plans(report: SyntheticReport, keeper: _Keeper, batch_size: int, max_batches: int, seed: int) -> list[_Plan]:
    """The next round's batches: what is still needed, at most `MAX_ROUND_BATCHES` of them."""
    need = keeper.n - len(report.rows)
    slots = _label_slots(keeper.labels, keeper.counts, keeper.cap, need) if keeper.labels else []
    plans = []
    for i in range(min(math.ceil(need / batch_size), max_batches - report.batches, MAX_ROUND_BATCHES)):
        index = report.batches + i
        count = min(batch_size, need - i * batch_size)
        labels = slots[i * batch_size : i * batch_size + count]
        plans.append(_Plan(index, count, labels, diversity_hint(seed, index), single=batch_size == 1))
    return plans


#: Told how generation goes: (message, live); live messages refresh a status line, the others are steps to print.
SyntheticProgress = Callable[..., None]

#: Batches per round: two rounds that add nothing stop generation ("stalled"), so a teacher that writes nothing costs
#: at most twice this many calls, whatever the size asked for (all of 10,000 rows' batches in round 1 cost 4,092).
MAX_ROUND_BATCHES = 50


def generate_synthetic(
    spec: TaskSpec,
    n: int,
    *,
    teacher: ChatModel,
    seed: int,
    batch_size: int = 5,
    max_workers: int = 4,
    max_rounds: int | None = None,
    max_batches: int | None = None,
    existing: Iterable[dict[str, Any]] = (),
    held_out: Iterable[dict[str, Any]] = (),
    verify: bool = False,
    relabel_check: bool = True,
    on_progress: SyntheticProgress | None = None,
) -> SyntheticReport:
    """Generate up to `n` checked, unique rows; top-up rounds replace rejects until `n`, a limit or the budget.

    A row that repeats or rewords an `existing` row (the user's and test rows) is rejected; `held_out` rows (the
    given test) are never shown to the teacher as examples. `relabel_check` (classification only) keeps a row only
    when the teacher, shown the inputs alone, gives it the label we asked for: one more short teacher call per
    batch (per row with a local teacher, batch_size 1). `on_progress` hears each answered batch (live) and each
    round's outcome, so a long generation does not look stalled.
    """
    report = SyntheticReport(rows=[], requested=n)
    if n <= 0:
        return report
    existing = list(existing)
    spec = without_held_out(spec, [*held_out])
    batch_size = max(1, batch_size)
    max_batches = max_batches if max_batches is not None else 3 * math.ceil(n / batch_size)
    labels = list(spec.labels or []) if spec.task_type == TaskType.CLASSIFICATION else []
    cap = math.ceil(n / len(labels)) if labels else n
    keeper = _Keeper(spec, n, labels, cap, {row_key(spec, r) for r in existing}, report,
                     [tokens(spec, r) for r in existing])  # fmt: skip
    relabel_rows = relabel_check and bool(labels) and spec.label_field is not None
    failed: Counter[str] = Counter()
    empty_rounds = 0
    while len(report.rows) < n:
        if stop := _limit_reached(report, max_rounds, max_batches, empty_rounds):
            report.stop_reason = stop
            break
        plans = _plans(report, keeper, batch_size, max_batches, seed)
        report.rounds += 1
        report.batches += len(plans)
        report.hints.extend(p.hint for p in plans)
        answered = _Answered(on_progress, len(plans), report.rounds)
        results, budget_hit = _run_round(spec, teacher, plans, verify, max_workers, relabel_rows, answered)
        before = len(report.rows)
        _take_results(report, keeper, plans, results, failed)
        empty_rounds = empty_rounds + 1 if len(report.rows) == before else 0
        if on_progress is not None:
            on_progress(f"synthetic rows: {len(report.rows)} of {n} kept after round {report.rounds} "
                        f"({report.batches} teacher batches)", live=False)  # fmt: skip
        if budget_hit:
            report.stop_reason = "budget"
            break
        if too_noisy(report.checked, report.agreed, len(labels)):  # more rounds would pay for the same noise
            report.stop_reason = "labels too noisy"
            break
    _settle(report, keeper, failed)
    return report


def _limit_reached(report: SyntheticReport, max_rounds: int | None, max_batches: int, empty_rounds: int) -> str | None:
    """The stop reason when no further round may start: a limit, or two rounds in a row that added nothing."""
    if max_rounds is not None and report.rounds >= max_rounds:
        return "max_rounds"
    if report.batches >= max_batches:
        return "max_batches"
    if empty_rounds >= 2:
        return "stalled"
    return None


def _take_results(
    report: SyntheticReport, keeper: _Keeper, plans: list[_Plan], results: dict[int, _Result], failed: Counter[str]
) -> None:
    """Keep a round's rows in batch order, not completion order, so the same answers give the same rows."""
    for plan in plans:
        result = results.get(plan.index)
        if result is None:
            continue
        if result.failure:
            failed[result.failure] += 1
        report.generated += len(result.items)
        keeper.take(result)


def _settle(report: SyntheticReport, keeper: _Keeper, failed: Counter[str]) -> None:
    """Put the rejection and failure counts in the report, and log the outcome in one line."""
    report.rejected = dict(keeper.rejected)
    report.failed_batches = dict(failed)
    log.info(
        "synthetic: %d/%d rows in %d batches (%s); rejected %s",
        len(report.rows),
        report.requested,
        report.batches,
        report.stop_reason,
        report.rejected,
    )


class _Answered:
    """Counts a round's answered batches for `on_progress` (worker threads call it: the count is locked)."""

    def __init__(self, on_progress: SyntheticProgress | None, total: int, round_no: int) -> None:
        self.on_progress, self.total, self.round_no = on_progress, total, round_no
        self.done = 0
        self._lock = threading.Lock()

    def __call__(self, *_: Any) -> None:
        if self.on_progress is None:
            return
        with self._lock:
            self.done += 1
            done = self.done
        self.on_progress(f"synthetic rows: {done} of {self.total} teacher batches answered (round {self.round_no})",
                         live=True)  # fmt: skip


def _run_round(
    spec: TaskSpec, teacher: ChatModel, plans: list[_Plan], verify: bool, max_workers: int, relabel_rows: bool,
    answered: _Answered,
) -> tuple[dict[int, _Result], bool]:  # fmt: skip
    """Run one wave of batches; on BudgetExceeded cancel what has not started and keep what finished."""
    results: dict[int, _Result] = {}
    budget_hit = False
    if max_workers <= 1 or len(plans) <= 1:
        for plan in plans:
            try:
                results[plan.index] = _run_batch(spec, teacher, plan, verify, relabel_rows)
            except BudgetExceeded:
                return results, True
            answered()
            if results[plan.index].budget_hit:
                return results, True
        return results, False
    with ThreadPoolExecutor(max_workers=min(max_workers, len(plans))) as pool:
        futures: dict[int, Future[_Result]] = {
            p.index: pool.submit(_run_batch, spec, teacher, p, verify, relabel_rows) for p in plans
        }
        for future in futures.values():
            future.add_done_callback(lambda f: None if f.cancelled() or f.exception() else answered())
        for index, future in futures.items():
            try:
                results[index] = future.result()
            except CancelledError:
                continue
            except BudgetExceeded:
                results.pop(index, None)
            if index not in results or results[index].budget_hit:
                budget_hit = True
                for other in futures.values():
                    other.cancel()
    return results, budget_hit


def estimate_synthetic_calls(
    n: int, *, batch_size: int = 5, verify: bool = False, worst_case: bool = False, relabel_check: bool = True
) -> int:
    """Teacher calls for `n` rows: one per batch (two with verify), plus the blind relabel (one per row for a local
    teacher, one per batch otherwise; classification only, so an upper bound for other tasks); worst case includes
    every top-up."""
    if n <= 0:
        return 0
    rounds = 3 if worst_case else 1
    batches = math.ceil(n / max(1, batch_size)) * rounds
    checks = (n * rounds if batch_size <= 1 else batches) if relabel_check else 0  # one relabel per call's rows
    return batches * (2 if verify else 1) + checks
