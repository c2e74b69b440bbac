"""`--dry-run`: the spec, the rows it would use and the estimated LM calls, after the spec and data stages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promptomatix.backends.dspy_estimate import run_seed
from promptomatix.errors import LMCallError
from promptomatix.result import DryRunReport
from promptomatix.run.recorder import usage_of
from promptomatix.run.stages import example_rows, user_rows
from promptomatix.run_guard import one_line

if TYPE_CHECKING:
    from promptomatix.data import DataSplits
    from promptomatix.lm.boundary import LMBoundary
    from promptomatix.run.env import RunEnv
    from promptomatix.run.state import RunState
    from promptomatix.task import TaskSpec


def estimate(env: RunEnv, st: RunState, spec: TaskSpec, splits: DataSplits) -> tuple[dict[str, int], list[str]]:
    """Estimated LM calls by stage (the optimizer's from its plan, sized to the budget left), and that plan."""
    cfg = env.config
    user = st.user_rows or user_rows(env)
    rows = example_rows(user)
    n_train, n_valid = len(splits.train), len(splits.valid)
    n_test = len(splits.test_rows()) or n_valid
    if st.planned_sizes is not None:  # the synthetic rows were planned, not generated
        n_train, n_valid, n_test = st.planned_sizes
    per_row = env.metrics_manager(spec).calls_per_row(spec.task_type)  # 2 when a judge scores each row
    left = None  # what the optimizer may spend: as in a run, after spec/data and the held-out scoring
    if cfg.max_calls is not None:
        spent = env.boundary().usage().total.calls
        left = max(0, cfg.max_calls - spent - min(cfg.max_calls, 2 * n_test * per_row))
    with run_seed(cfg.seed):  # MIPROv2's random trials follow the run's seed
        calls, plan = _estimate(env, cfg, user, rows, (n_train, n_valid, n_test), left, per_row, st.usable_user_rows)
    return calls, plan


def _estimate(env: RunEnv, cfg: Any, user: dict[str, Any], rows: Any, sizes: tuple[int, int, int],
              left: int | None, per_row: int = 1, n_usable: int | None = None,
              ) -> tuple[dict[str, int], list[str]]:  # fmt: skip
    """The stages' calls; a judge-scored task's search and held-out scoring are planned in scored rows (the
    budget's share) and counted in calls. The data calls top up the rows validation keeps (`n_usable`), as the
    run does, not the raw rows (it said "data 0" for a run that would have the teacher write some)."""
    from promptomatix.backends.dspy_estimate import held_out_row_calls
    from promptomatix.backends.registry import backend_settings, estimate_calls, search_plan
    from promptomatix.data import estimate_data_calls
    from promptomatix.task import SpecOverrides, estimate_spec_calls

    n_train, n_valid, n_test = sizes
    rows_left = None if left is None else left // per_row
    calls = {
        "spec": estimate_spec_calls(SpecOverrides.from_kwargs(cfg.model_dump()), rows=rows or None),
        "data": estimate_data_calls(
            n_user_rows=len(user.get("user_rows", [])) if n_usable is None else n_usable,
            synthetic_size=cfg.synthetic_data_size,
            batch_size=cfg.batch_size_for_teacher(env.boundary().role("teacher").model),
            verify=cfg.verify_synthetic,
            explicit_splits="train_rows" in user or "valid_rows" in user,
        ),
        "optimize": estimate_calls(cfg, n_train, n_valid, rows_left) * per_row,
    }
    initial_row, optimized_row = held_out_row_calls(backend_settings(cfg), per_row)  # a ReAct row: 2 task calls
    calls["final_test"] = n_test * (initial_row + optimized_row)
    plan = search_plan(cfg, n_train, n_valid, rows_left)
    if per_row > 1:
        plan.append(f"a judge scores each row: the search plan above counts scored rows, and each costs {per_row} LM "
                    "calls (the task model's answer and the judge's score); the estimate counts calls")  # fmt: skip
    if left is not None and calls["optimize"] >= left and estimate_calls(cfg, n_train, n_valid) * per_row > left:
        calls["final_test"] = n_test * initial_row  # the budget stops the optimizer: the initial prompt is kept
        plan.append(f"held-out test: {n_test} rows, the initial prompt only (the budget stops the search)")
    elif n_test:
        plan.append(f"held-out test: {n_test} rows × initial and optimized prompt ({n_test * initial_row} calls if the "
                    "initial prompt is kept)")  # fmt: skip
    return calls, plan


def dry_run(env: RunEnv, st: RunState) -> DryRunReport:
    spec, splits = st.need("spec"), st.need("splits")
    calls, plan = estimate(env, st, spec, splits)
    built = env.boundary_if_built()  # the spec questions a dry run asks are the session's cost too
    _check_model_answered(built, teacher_needed=_teacher_needed(env.config, calls))
    env.recorder.dry_run_done(usage_of(built) if built is not None else None)
    return DryRunReport(
        session_id=env.recorder.session_id,
        task_type=spec.task_type,
        input_fields=spec.input_names,
        output_fields=spec.output_names,
        labels=spec.labels,
        initial_prompt=spec.initial_prompt,
        assumptions=spec.assumptions,
        rows={"train": splits.train, "valid": splits.valid, "test": splits.test_rows()},
        data_report=st.data_report,
        estimated_calls={**calls, "total": sum(calls.values())},
        search_plan=plan,
        calls_so_far=env.boundary().usage().total.calls,
        task_spec=spec.model_dump(mode="json"),
    )


def _teacher_needed(cfg: Any, calls: dict[str, int]) -> bool:
    """Whether the planned run asks the teacher again after the spec: for synthetic rows, or to propose prompts
    (every backend but DSPy's bootstrap/labeled, which only collect demos)."""
    from promptomatix.backends.dspy_settings import normalize_optimizer_name

    if calls.get("data", 0) > 0 or cfg.backend != "dspy":
        return True
    return normalize_optimizer_name(cfg.dspy_optimizer or "miprov2") not in ("bootstrap", "labeled")


def _check_model_answered(boundary: LMBoundary | None, *, teacher_needed: bool = True) -> None:
    """A model that failed every call the dry run made would fail the run: the dry run says so and is not a success.

    (It printed a plan and exited 0 while every spec question had met an HTTP 500; the spec was a guess.) A teacher
    the run would not ask again is not fatal: the spec falls back to the data and the flags, as the run's does."""
    if boundary is None:
        return
    for role, used in boundary.usage().by_role.items():
        first = boundary.first_error(role)
        if first is None or not used.calls or used.failed_calls < used.calls:
            continue
        if role == "teacher" and not teacher_needed:
            continue
        raise LMCallError(
            f"dry run: every {role} call failed ({used.failed_calls} of {used.calls} requests), so a run would fail too: "
            f"{one_line(first.message)}",
            hint=first.hint or f"check the {role} model (--model / --teacher-model, --api-base, the key)",
        )
