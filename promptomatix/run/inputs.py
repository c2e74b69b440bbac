"""Checks of the user's flags and rows that need no model, run before the session is created.

A wrong command line (a `--data` file that does not exist or whose type is not read, a column the file does not
have, an unknown `--task-type`, a one-value `--labels` or labels no row carries, `--sample-data` that is not JSON
rows, a field name the dspy backend cannot carry) is a UsageError, exit 2, with nothing spent and no `failed` session left in `sessions list`.
They were found inside the run, some after the teacher's spec call.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from promptomatix.errors import ConfigurationError, DataError, DataUsageError, UsageError

if TYPE_CHECKING:
    from promptomatix.run.env import RunEnv
    from promptomatix.run.state import RunState


def check_inputs(env: RunEnv, st: RunState) -> None:
    """The flags first (free), then the user's rows, loaded once here and reused by the spec and data stages."""
    from promptomatix.run.stages import example_rows

    cfg = env.config
    check_spec_flags(cfg)
    check_named_values(cfg)
    if st.user_rows is None:
        st.user_rows = load_user_rows(env)
    check_split_flags(cfg, st.user_rows)
    check_labels_in_rows(cfg, [*example_rows(st.user_rows), *st.user_rows.get("test_rows", [])])
    if cfg.backend == "dspy":
        check_dspy_names(cfg, example_rows(st.user_rows))


def check_spec_flags(cfg: Any) -> None:
    """`--task-type`, `--labels` and `--sample-data` as the spec inference reads them, refused as usage errors."""
    from promptomatix.task.overrides import parse_sample_data, parse_task_type
    from promptomatix.task.task_types import label_kind

    task_type = None
    try:
        task_type = parse_task_type(cfg.task_type) if cfg.task_type else None
        if cfg.sample_data:
            parse_sample_data(cfg.sample_data)
    except ConfigurationError as e:
        raise UsageError(e.message, hint=e.hint) from None
    labels = cfg.labels or []
    if len(labels) == 1 and (task_type is None or label_kind(task_type) == "single"):
        raise UsageError(f"--labels names one label ({labels[0]!r}); a classifier needs two or more",
                         hint=f"name them all, e.g. --labels {labels[0]},OTHER")  # fmt: skip


def check_split_flags(cfg: Any, user: dict[str, Any]) -> None:
    """`--test-data-size 0` asks for no held-out test; with test rows given (a test file, `test.csv` in the data
    directory, `test_data`), one of the two is a mistake: the size was ignored without a word."""
    if cfg.test_data_size == 0 and "test_rows" in user:
        raise UsageError("--test-data-size 0 (no held-out test) contradicts the test rows given (a test file or "
                         "split)", hint="leave out --test-data-size 0, or the test file")  # fmt: skip


def check_labels_in_rows(cfg: Any, rows: list[dict[str, Any]]) -> None:
    """`--labels` that no given row carries (e.g. pos,neg on a file labelled positive/negative): every row would be
    dropped, which the data stage found only after the teacher's spec call, leaving a failed session. Checked only
    when the output column is known without the teacher: given, or named like one (`label`, `answer`, ...)."""
    from promptomatix.task.heuristics import OUTPUT_COLUMN_HINTS
    from promptomatix.task.models import normalize_label

    if not cfg.labels or not rows:
        return
    inputs = set(cfg.input_fields or [])  # a given input named `answer` is not the output (a grading task)
    columns = {str(c).lower(): c for c in rows[0] if c not in inputs}
    given = cfg.output_fields or []
    named = next((columns[h] for h in OUTPUT_COLUMN_HINTS if h in columns), None)
    column = given[0] if len(given) == 1 else (named if not given else None)
    if column is None:
        return
    wanted = {normalize_label(label) for label in cfg.labels}
    values = [r.get(column) for r in rows if r.get(column) not in (None, "")]
    if any(isinstance(v, str) and v.lstrip().startswith("[") for v in values):
        return  # JSON-list cells: whether they carry the labels is the data stage's to say (it names the format)
    parts = (v if isinstance(v, list) else [v, *str(v).split(",")] for v in values)
    if not values or any(normalize_label(p) in wanted for ps in parts for p in ps):
        return
    found = list(dict.fromkeys(str(v).strip() for v in values))
    shown = ", ".join(found[:8]) + (" …" if len(found) > 8 else "")
    raise DataUsageError(f"--labels {', '.join(cfg.labels)}: no row's {column!r} is one of them (the data's labels are "
                     f"{shown})", hint="pass --labels with the data's labels, or leave --labels out")  # fmt: skip


def load_user_rows(env: RunEnv) -> dict[str, Any]:
    """The user's rows by role (stages.user_rows). The loaders raise a data argument of the command line that is
    wrong (a missing file, a type that is not read, a column the file lacks) as a DataUsageError (exit 2); a
    malformed file stays a DataError (exit 1): the command line was right."""
    from promptomatix.run.stages import user_rows

    return user_rows(env)


def check_dspy_names(cfg: Any, rows: list[dict[str, Any]]) -> None:
    """Field names the dspy backend cannot carry: the given ones, and the columns the rows would make fields."""
    from promptomatix.task.heuristics import fields_from_rows

    names = [*(cfg.input_fields or []), *(cfg.output_fields or [])]
    if rows:
        ins, outs, _ = fields_from_rows(rows, cfg.input_fields or None, cfg.output_fields or None)
        names += [*ins, *outs]
    refuse_dspy_names(names)


def refuse_dspy_names(names: list[str], *, proposed: bool = False) -> None:
    """One line naming the fields, and the fixes; before anything is spent (it was found in the search stage).
    Names the user gave (flags, data columns) are a wrong command line (exit 2); names the teacher `proposed`
    after the session opened are not the user's doing: a DataError (exit 1)."""
    from promptomatix.backends.dspy_names import dspy_names_hint, dspy_unusable_names

    if bad := dspy_unusable_names(names):
        quoted, s = ", ".join(repr(n) for n in bad), "s" if len(bad) > 1 else ""
        if proposed:
            raise DataError(f"the task spec the teacher proposed names the field{s} {quoted}, which the dspy backend "
                            "cannot use (DSPy uses it itself)",
                            hint="pass --input-fields/--output-fields with other names, or --backend meta")  # fmt: skip
        raise DataUsageError(f"the dspy backend cannot use the field name{s} {quoted} (DSPy uses it itself)",
                             hint=dspy_names_hint(bad))  # fmt: skip
    return None


def check_named_values(cfg: Any) -> None:
    """Values that name something which must exist (a `--meta-prompt` file, a DSPy module or optimizer, a hub
    dataset): a typo was found inside the run, after the teacher's spec call, and left a `failed` session that
    `resume` (which takes none of these flags) could never fix. Cheap: no model, no DSPy import."""
    if cfg.data and str(cfg.data).startswith("hf:"):
        from promptomatix.data.loaders import parse_hf_source

        try:
            parse_hf_source(str(cfg.data))
        except DataError as e:
            raise DataUsageError(f"--data {e.message}", hint=e.hint) from None
    check_meta_prompt_files(cfg.meta_prompts)
    if cfg.backend == "dspy":
        check_dspy_choice(cfg)


def check_meta_prompt_files(paths: list[str]) -> None:
    """Each `--meta-prompt` file exists, reads as text and shows `$current_prompt` (the run checked it only when
    the meta backend was built, after the spec and the data were paid for)."""
    from promptomatix.backends.strategies import template_file_strategy

    for path in paths:
        try:
            template_file_strategy(path)
        except ConfigurationError as e:
            raise UsageError(e.message, hint=e.hint) from None  # (the message names the meta-prompt file)


def check_dspy_choice(cfg: Any) -> None:
    """`--dspy-module` and `--dspy-optimizer` (or their `--backend-option`s) name a known module and optimizer.
    Modules registered with `register_module` live in dspy_modules, which imports DSPy: read only if loaded."""
    from promptomatix.backends.dspy_settings import (
        dspy_module_registry,
        normalize_module_name,
        normalize_optimizer_name,
    )

    try:
        normalize_optimizer_name(str(cfg.backend_options.get("optimizer", cfg.dspy_optimizer)))
    except ConfigurationError as e:
        raise UsageError(f"--dspy-optimizer: {e.message}", hint=e.hint) from None
    name = str(cfg.backend_options.get("module", cfg.dspy_module))
    user = sys.modules.get("promptomatix.backends.dspy_modules")
    known = {*dspy_module_registry(), *(user.registered_modules() if user is not None else {})}
    if normalize_module_name(name) not in known:
        raise UsageError(f"unknown DSPy module {name!r} (--dspy-module)",
                         hint=f"use one of {', '.join(sorted(known))}, or register one from a plugin")  # fmt: skip


def check_command_line(cfg: Any, clients: Any = None) -> None:
    """The command's values, checked before the run object exists: what `check_named_values` checks, the model
    strings (a catalogue name, a GGUF path, a provider litellm knows) and `--metric`'s module or file. Each wrong
    one is a UsageError (exit 2, one line): inside the run they were exit 1, like a failed run."""
    from promptomatix.errors import MetricError, ModelUnavailableError
    from promptomatix.lm.factory import check_model_values
    from promptomatix.metrics.custom import check_metric_spec

    check_named_values(cfg)
    try:
        check_model_values(cfg.model_settings(), clients)
    except (ConfigurationError, ModelUnavailableError) as e:
        if type(e) not in (ConfigurationError, ModelUnavailableError):
            raise  # a plugin's provider that fails keeps its own error (exit 1): the command line was fine
        raise UsageError(e.message, hint=e.hint) from None
    if cfg.metric:
        try:
            check_metric_spec(cfg.metric)
        except MetricError as e:
            raise UsageError(f"--metric: {e.message}", hint=e.hint) from None
