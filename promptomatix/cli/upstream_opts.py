"""`optimize`'s options that only upstream migrants use: the teacher's endpoint and sampling, upstream's spellings
(`--max_tokens`, `--trainer`, `--model_provider`, `--huggingface_dataset_name NAME`) and upstream's flags that have no
effect or no equivalent here, which the CLI treats as the Python API does (`promptomatix.upstream`): a warning line
for a flag upstream never used, a refusal naming the replacement for one it used."""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import typer

#: upstream flags that take a value and have no counterpart here (promptomatix.upstream decides what each becomes)
UPSTREAM_ONLY = ("style_guide", "context", "task", "question", "task_context", "few_shot_examples", "metrics",
                 "tools", "valid_data_full")  # fmt: skip


def _param(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


PARAMS = (
    _param("teacher_api_base", str, typer.Option(None, "--teacher-api-base", "--config_model_api_base",
        help="The teacher's (and judge's) own server URL; default: the task model's --api-base (with a teacher key: "
        "the teacher provider's own URL).")),
    _param("teacher_api_key", str, typer.Option(None, "--teacher-api-key", "--config_model_api_key",
        envvar="PROMPTOMATIX_TEACHER_API_KEY", help="The teacher's (and judge's) own key; default: --api-key when the teacher is on the task's server and "
        "provider, else the provider's environment variable.")),
    _param("temperature", float, typer.Option(None, "--temperature", min=0.0, max=2.0,
        help="The task model's sampling temperature.")),
    _param("teacher_temperature", float, typer.Option(
        None, "--teacher-temperature", "--config_temperature", min=0.0, max=2.0)),
    _param("teacher_max_tokens", int, typer.Option(None, "--teacher-max-tokens", "--config_max_tokens", min=1)),
    _param("constraints", list[str], typer.Option(None, "--constraints", help="Comma-separated rules for the prompt.")),
    _param("model_provider", str, typer.Option(None, "--model_provider", hidden=True)),
    _param("config_model_provider", str, typer.Option(None, "--config_model_provider", hidden=True)),
    _param("hf_name", str, typer.Option(None, "--huggingface_dataset_name", hidden=True)),
    *(_param(f"up_{n}", str, typer.Option(None, f"--{n}", hidden=True)) for n in UPSTREAM_ONLY),
)  # fmt: skip


def upstream_kwargs(o: dict[str, Any]) -> dict[str, Any]:
    """The RunConfig keywords of these options (None: not given)."""
    from promptomatix.upstream import hf_name

    names = ("teacher_api_base", "teacher_api_key", "temperature", "teacher_temperature", "teacher_max_tokens",
             "model_provider", "config_model_provider")  # fmt: skip
    out = {n: o[n] for n in names}
    out["constraints"] = [p.strip() for v in o["constraints"] or [] for p in v.split(",") if p.strip()] or None
    out.update({n: o[f"up_{n}"] for n in UPSTREAM_ONLY})
    out["hf_data"] = hf_name(o["hf_name"]) if o["hf_name"] else None
    return out


def shown_warnings(fn: Any) -> Any:
    """Run `fn()`; the UserWarnings it raises (an upstream setting with no effect) become one `Warning:` line each on
    stderr, as the CLI's other warnings are, not a Python warning with a file and line."""
    from promptomatix.cli.render import info

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        result = fn()
    for w in caught:
        info(f"Warning: {w.message}")
    return result
