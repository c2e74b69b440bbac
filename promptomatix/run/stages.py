"""The stages of a run over a `RunState`: spec → data → search → held-out scoring (the result: run_report).

Each stage reads what the earlier ones filled in, adds its own part, and hands anything to keep to the session
recorder. None of them handles Ctrl-C or errors: the runner runs them inside `ending`.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any

from promptomatix import held_out
from promptomatix.errors import BudgetExceeded
from promptomatix.lm.boundary import LIMIT_FLAGS
from promptomatix.run.carried import run_limits
from promptomatix.run.checkpoint import RunProgress
from promptomatix.run.previous import held_out_passes
from promptomatix.run_guard import held_out_notes, require_readable_answers, require_task_answered, run_owner

if TYPE_CHECKING:
    from promptomatix.backends.base import BackendResult, RunContext
    from promptomatix.data import DataSplits
    from promptomatix.data.builder import Sources
    from promptomatix.lm.boundary import Budget
    from promptomatix.run.env import RunEnv
    from promptomatix.run.state import RunState
    from promptomatix.task import TaskSpec


def user_rows(env: RunEnv) -> dict[str, Any]:
    """The rows the user gave (files and in-memory lists), by role, with the notes on skipped rows."""
    from promptomatix.data import load_rows, sample_cap
    from promptomatix.data.roles import source_roles

    cfg = env.config
    fields = {"input_fields": cfg.input_fields, "output_fields": cfg.output_fields, "seed": cfg.seed,
              "max_rows": sample_cap(cfg.train_data_size, cfg.valid_data_size, cfg.test_data_size)}  # fmt: skip
    out: dict[str, Any] = {"skipped": {}}
    sources = {"user_rows": cfg.data, "train_rows": cfg.local_train_data_path, "test_rows": cfg.local_test_data_path}
    for key, source in sources.items():
        roles = source_roles(source) if source and key == "user_rows" else None
        parts: dict[str, Any] = {f"{r}_rows": ps for r, ps in roles[0].items()} if roles else {key: source}
        for part_key, part in parts.items() if source else ():
            loaded = load_rows(part, **fields)
            if roles and part_key == next(iter(parts)):  # the split files' account, once, with the rows
                loaded.rows.notes[:0] = roles[1]
            out[part_key] = _joined(out.get(part_key), loaded.rows)  # a split file and a --local-*-path: both
            for reason, n in loaded.skipped.items():
                out["skipped"][f"{source}: {reason}"] = out["skipped"].get(f"{source}: {reason}", 0) + n
    for key, given in (("train_rows", cfg.train_data), ("valid_rows", cfg.valid_data), ("test_rows", cfg.test_data)):
        if given is not None:  # with a file of the same role (--local-train-data-path), both: the file's rows were
            out[key] = _joined(out.get(key), given)  # silently dropped (train_data + data= combined already)
    if "test_rows" in out and "train_rows" not in out and "user_rows" in out:
        out["train_rows"] = out.pop("user_rows")
    return out


def _joined(before: Any, rows: Any) -> Any:
    """Rows of one role from two sources, with both sources' notes (LoadedRows carries them)."""
    if before is None:
        return rows
    from promptomatix.data.loaders import LoadedRows

    return LoadedRows([*before, *rows], [*getattr(before, "notes", []), *getattr(rows, "notes", [])])


def example_rows(user: dict[str, Any]) -> list[dict[str, Any]]:
    return [*user.get("user_rows", []), *user.get("train_rows", []), *user.get("valid_rows", [])]


def spec_stage(env: RunEnv, st: RunState) -> None:
    """Work out the task spec from the description, the given parts and the rows."""
    from promptomatix.lm.teacher import TEACHER_NOTE
    from promptomatix.task import SpecOverrides, infer_task_spec

    teacher = env.boundary().role("teacher")
    if st.user_rows is None:  # the runner loads them before the session opens (a wrong file is exit 2)
        st.user_rows = user_rows(env)
    rows = example_rows(st.user_rows)
    env.emit("spec", "working out the task spec")
    overrides = SpecOverrides.from_kwargs(env.config.model_dump())
    spec = infer_task_spec(env.config.raw_input, teacher=teacher, given=overrides, rows=rows or None)
    chosen = [n for n in st.notes if n.startswith(TEACHER_NOTE)]  # the default teacher (lm/teacher.py): shown
    if chosen:  # with the other assumptions, in the dry run too
        st.notes[:] = [n for n in st.notes if n not in chosen]
        spec = spec.model_copy(update={"assumptions": [*spec.assumptions, *chosen]})
    if env.config.backend == "dspy":  # names the teacher proposed: refused before the data is paid for
        from promptomatix.run.inputs import refuse_dspy_names

        refuse_dspy_names([*spec.input_names, *spec.output_names], proposed=True)
    env.emit("spec", f"task type {spec.task_type}; fields {spec.input_names} -> {spec.output_names}")
    st.spec = spec


def data_stage(env: RunEnv, st: RunState) -> None:
    """Build train / valid / held-out test from the user's rows and/or synthetic ones; save spec and data. A dry
    run decides on the rows validation keeps and never has the teacher write data (data_plan)."""
    from promptomatix.data import build_data
    from promptomatix.data.builder import validate_sources
    from promptomatix.run.data_plan import test_label_note

    cfg, spec, user = env.config, st.need("spec"), st.need("user_rows")
    teacher = env.boundary().role("teacher")
    if cfg.dry_run:  # free: what the builder keeps (and refuses), before anyone would pay for synthetic rows
        sizes = {"train": cfg.train_data_size, "valid": cfg.valid_data_size, "test": cfg.test_data_size,
                 "train_ratio": cfg.train_ratio}  # fmt: skip
        usable = validate_sources(spec, user_rows=user.get("user_rows"), train_rows=user.get("train_rows"),
                                  valid_rows=user.get("valid_rows"), test_rows=user.get("test_rows"), seed=cfg.seed,
                                  sizes=sizes, skipped=user["skipped"], labels_given=bool(cfg.labels))  # fmt: skip
        st.usable_user_rows = len(usable.user)
        if synthetic_needed(cfg, user, len(usable.user)):
            plan_data(env, st, spec, usable)
            return
    env.emit("data", "building train / valid / test data")
    splits, report = build_data(
        spec, teacher=None if cfg.dry_run else teacher, user_rows=user.get("user_rows"),
        train_rows=user.get("train_rows"), valid_rows=user.get("valid_rows"), test_rows=user.get("test_rows"),
        synthetic_size=cfg.synthetic_data_size, seed=cfg.seed, train_size=cfg.train_data_size,
        valid_size=cfg.valid_data_size, test_size=cfg.test_data_size, train_ratio=cfg.train_ratio,
        max_workers=cfg.n_parallel, batch_size=cfg.batch_size_for_teacher(teacher.model),
        verify=cfg.verify_synthetic, skipped=user["skipped"], labels_given=bool(cfg.labels),
        on_progress=lambda message, live: env.emit("data", message, live=live),
    )  # fmt: skip
    if note := test_label_note(spec, user):
        report.notes.append(note)
    report.notes.extend(size_notes(cfg, report.split_sizes))
    st.splits, st.data_report = splits, report.model_dump(mode="json")
    env.emit("data", f"data ready: {splits.sizes}")
    env.recorder.spec_and_data(spec, splits, st.data_report)


def synthetic_needed(cfg: Any, user: dict[str, Any], n_usable: int | None = None) -> int:
    """How many rows the teacher would have to write (0 when the user gave explicit splits), on the usable count
    when it is known (the raw count made the dry run plan for rows the run drops)."""
    from promptomatix.run.data_plan import synthetic_need

    return synthetic_need(cfg, user, len(user.get("user_rows", [])) if n_usable is None else n_usable)


def size_notes(cfg: Any, sizes: dict[str, int]) -> list[str]:
    """A split size the user asked for that the data could not meet is said, with the flag (it was cut silently)."""
    asked = {"train": cfg.train_data_size, "valid": cfg.valid_data_size, "test": cfg.test_data_size}
    return [f"asked for {want} {name} rows (--{name}-data-size {want}); the data gave {sizes.get(name, 0)}"
            for name, want in asked.items() if want and sizes.get(name, 0) < want]  # fmt: skip


def plan_data(env: RunEnv, st: RunState, spec: TaskSpec, usable: Sources) -> None:
    """A dry run says what data building would do without paying for it: writing synthetic rows takes minutes
    on a local teacher. Nothing is saved as data, so `resume` builds it for real (spec calls replay from cache)."""
    from promptomatix.data import DataSplits, estimate_data_calls
    from promptomatix.run.data_plan import plan_note, planned_sizes, test_label_note

    cfg, teacher, user = env.config, env.boundary().role("teacher"), st.need("user_rows")
    need = synthetic_needed(cfg, user, len(usable.user))
    calls = estimate_data_calls(n_user_rows=len(usable.user), synthetic_size=cfg.synthetic_data_size,
                                batch_size=cfg.batch_size_for_teacher(teacher.model), verify=cfg.verify_synthetic)  # fmt: skip
    st.planned_sizes = planned_sizes(cfg, len(usable.user) + need, len(usable.test))
    st.splits = DataSplits(usable.user, [], usable.test, input_fields=spec.input_names, output_fields=spec.output_names)
    notes = plan_note(need, calls, st.planned_sizes, usable)
    if note := test_label_note(spec, user):
        notes.append(note)
    skipped = dict(usable.intake.dropped)  # the loaders' skips and validation's
    st.data_report = {"notes": notes, "skipped": skipped, "sources": {"user": len(usable.user)}, "planned": True}
    env.recorder.spec_only(spec)
    env.emit("data", f"dry run: {need} synthetic rows planned, not generated")


def held_out_rows(splits: DataSplits) -> tuple[list[dict[str, Any]], str]:
    """The rows the final report scores both prompts on: the test split, else (no verdict) the valid one."""
    test = splits.test_rows()
    return (test, "test") if test else (list(splits.valid), "valid")


def search_stage(env: RunEnv, st: RunState) -> None:
    """Record what the search starts from, then let the backend search (train and valid only)."""
    cfg, spec, splits, initial = env.config, st.need("spec"), st.need("splits"), st.need("initial")
    env.recorder.search_started(
        RunProgress(owner=run_owner(), initial=initial.model_dump(), human_feedback=st.human_feedback,
                    feedback_ids=st.feedback_ids, parent_version=st.parent_version, backend=cfg.backend,
                    spent_before=st.spent_before, limits=run_limits(cfg))
    )  # fmt: skip
    boundary = env.boundary()
    st.ctx = env.context(spec, st)
    rows, split = held_out_rows(splits)
    full = boundary.budget
    if full.max_calls is not None or full.max_tokens is not None or full.max_usd is not None:
        # keep enough to score both prompts (resume: and the saved one) on them; not capped at max_calls: a budget
        # too small for the search says by how much, the reserve included. Without test rows they are the valid
        # rows, where the meta search scored the initial prompt and its result (their answers are cached: a third
        # of a small budget was held back for nothing): when the models answer greedily (sampled answers are not
        # replayed) and the budget counts calls (a token or dollar limit holds back by the calls reserved), a
        # quarter of a pass stays held back for answers no cache keeps (empty ones). Other backends keep it all.
        per_row = st.ctx.metrics.calls_per_row(spec.task_type)  # a judge: 2 a row
        roles = ("task", "judge") if per_row > 1 else ("task",)
        cached = (split == "valid" and cfg.backend == "simple_meta_prompt" and boundary.greedy(*roles)
                  and full.max_tokens is None and full.max_usd is None)  # fmt: skip
        reserve = held_out_passes(env, st) * len(rows)
        if cached:
            reserve -= 2 * len(rows) - max(2, len(rows) // 4)
        boundary.set_budget(full.model_copy(update={"reserved_calls": reserve * per_row}))
    st.result = _compile(env, st.ctx, st, full)
    env.recorder.candidates(st.result.candidates)


def _compile(env: RunEnv, ctx: RunContext, st: RunState, full: Budget) -> BackendResult:
    from promptomatix.backends.registry import compile_backend, make_backend

    try:
        backend = make_backend(env.config)
        _dspy_fits(env, ctx, st)
        _freeze_imports()
        return compile_backend(env.config, backend, ctx, st.need("initial"), st.need("splits").backend_view())
    except BudgetExceeded as e:
        raise BudgetExceeded(
            f"the budget ran out before the initial prompt was scored ({e.message})",
            limit=e.limit,
            hint=f"raise {LIMIT_FLAGS.get(e.limit, 'the budget')}" + (
                " or use a smaller --synthetic-data-size" if (st.data_report.get("synthetic") or {}).get("accepted")
                else ""  # with no synthetic rows, fewer of them saves nothing
            ),
        ) from e
    finally:
        # Release the calls held back for the final report. A time limit bounds the search, not the report:
        # without held-out scores the run would have nothing to show for the time it spent.
        ctx.boundary.set_budget(full.model_copy(update={"max_seconds": None}))


def _dspy_fits(env: RunEnv, ctx: RunContext, st: RunState) -> None:
    """The dspy backend scores the initial program on every valid row before it searches, and each candidate on
    them too: a budget that cannot pay for both is refused before the first call, with the limit that would do (it
    failed after one call with "budget ... spent", or kept the initial program unsearched). The meta backend sizes
    its own plan and says the same."""
    if env.config.backend != "dspy" or st.spent_before is not None:  # a resume replays its calls free
        return
    left = ctx.boundary.remaining_calls(clamp=False)
    need = 2 * len(st.need("splits").valid) * ctx.metrics.calls_per_row(ctx.spec.task_type)  # and one candidate
    if left is None or left >= need:
        return
    from promptomatix.backends.plan import search_does_not_fit

    b = ctx.boundary.budget
    raise search_does_not_fit(f"it leaves {max(left, 0)} calls for the search after the final scoring's "
                              f"{b.reserved_calls}; scoring the initial program and one candidate on the valid rows "
                              f"take {need}", int(b.shown("max_calls") or 0), need - left)  # fmt: skip


def _freeze_imports() -> None:
    """Keep what the imports made (DSPy, litellm, pydantic: ~150k objects that live as long as the process) out of
    the cycle collector's full passes, which otherwise walk them all every few hundred thousand allocations (0.14 s
    each, with no model call in flight). Once per process: later runs' objects stay collectable."""
    if gc.get_freeze_count() == 0:
        gc.freeze()


def held_out_stage(env: RunEnv, st: RunState) -> None:
    """Score the initial and the chosen prompt on the same held-out rows; errors become notes (or a failure)."""
    rows, split = held_out_rows(st.need("splits"))
    env.emit("final", f"scoring initial and optimized prompts on {len(rows)} held-out {split} rows")
    held = held_out.score_held_out(st.need("ctx"), st.need("result"), rows, split)
    boundary = env.boundary()
    require_task_answered(boundary)
    require_readable_answers([held.initial_report, held.best_report], held.answered_by)
    st.notes.extend(held_out_notes(held.initial, held.best, split, boundary, held.same_prompt,
                                   held.predictor_error))  # earlier notes stay  # fmt: skip
    st.held = held
