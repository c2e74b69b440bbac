"""Upstream Promptomatix's kwargs and flags that are not ours: mapped where the meaning carries over, refused with
the replacement where it does not, and warned about where upstream itself never used them. One table serves the
Python API (`RunConfig.from_kwargs`) and the CLI (`promptomatix optimize --tools …`), so both say the same."""

from __future__ import annotations

import os
import warnings
from typing import Any

from promptomatix.errors import ConfigurationError

#: upstream kwargs that had no effect as given (never read, or overwritten from raw_input): accepted, with a warning.
IGNORED = frozenset({"style_guide", "context", "metrics", "few_shot_examples", "task", "task_context", "question"})
#: upstream switches whose meaning is how this one always works (local paths are read when given; a task_description
#: is the spec's task, apart from raw_input): accepted silently.
IMPLIED = frozenset({"load_data_local", "decouple_task_description_and_raw_input"})

#: upstream kwargs that did something we cannot do: refused, naming what to use instead (a silent drop sent a
#: ReAct run off with no tools and a dspy run off without its evaluation set).
UNSUPPORTED: dict[str, str] = {
    "tools": "ReAct gets no tools from a setting here; register a DSPy module whose factory builds "
    "dspy.ReAct(signature, tools=[...]) (promptomatix.backends.dspy_modules.register_module) and pass its name "
    "as dspy_module",
    "valid_data_full": "pass the rows as valid_data (they are pooled with the other rows and re-split)",
    "list_feedbacks": "use `promptomatix feedback list SESSION_ID`",
    "analyze_feedbacks": "use `promptomatix feedback list SESSION_ID`",
    "export_feedbacks": "use `promptomatix sessions export SESSION_ID --format json`",
    "prompt_id": "name the session: `promptomatix feedback list SESSION_ID`",
}

#: upstream's providers (core/config.py ModelProvider) → litellm's prefix; `local` meant a server of one's own. Any
#: other name is taken as litellm's prefix (litellm's check of the model string then names an unknown one).
_PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "databricks": "databricks", "togetherai": "together_ai",
              "together_ai": "together_ai"}  # fmt: skip


def translate(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Upstream's kwargs as ours: providers folded into the model string, a bare HF dataset name made `hf:NAME`,
    unsupported names refused and never-used ones dropped with a warning."""
    out = {k: v for k, v in kwargs.items() if v is not None}
    for key in [k for k in out if k in UNSUPPORTED]:
        raise ConfigurationError(f"{key} is not supported", hint=UNSUPPORTED[key])
    for key in [k for k in out if k in IMPLIED]:
        del out[key]
    ignored = sorted(k for k in out if k in IGNORED)
    if ignored:
        warnings.warn(f"ignored: {', '.join(ignored)} (no effect upstream either)",
                      UserWarning, stacklevel=4)  # fmt: skip
    for key in ignored:
        del out[key]
    _fold_provider(out, "model_provider", ("model_name", "model"))
    _fold_provider(out, "config_model_provider", ("config_model_name", "teacher_model", "teacher"))
    if "huggingface_dataset_name" in out:
        out["huggingface_dataset_name"] = hf_name(out["huggingface_dataset_name"])
    _task_from_data(out, given_task=kwargs.get("raw_input") is not None)  # an explicit None is no task
    return out


def _task_from_data(out: dict[str, Any], *, given_task: bool) -> None:
    """Upstream took raw_input or a dataset and derived the task from the data; the CLI says so in a sentence, and
    so does the API now (it refused with "no task description")."""
    if given_task or any(out.get(k) for k in ("human_input", "task_description")):
        return
    keys = ("data", "huggingface_dataset_name", "local_train_data_path")
    source = next((out[k] for k in keys if isinstance(out.get(k), (str, os.PathLike)) and str(out[k]).strip()), None)
    if source is not None:
        out["raw_input"] = f"Learn the task shown by the data in {os.fspath(source)}"


def _fold_provider(out: dict[str, Any], key: str, model_keys: tuple[str, ...]) -> None:
    """`model_provider="anthropic", model_name="claude-…"` → `anthropic/claude-…` (upstream chose the provider from
    the kwarg; here the prefix does). A name that already has a prefix keeps it; one naming another is refused."""
    if key not in out:
        return
    provider = str(out.pop(key)).strip().lower()
    model_key = next((k for k in model_keys if out.get(k)), None)
    if model_key is None:
        raise ConfigurationError(
            f"{key}={provider!r} names no model",
            hint=f"pass the model as provider/NAME, e.g. {model_keys[0]}='openai/gpt-4o-mini'",
        )
    prefix = _PROVIDERS.get(provider) or (
        provider if provider.replace("_", "").isalnum() and provider != "local" else None
    )
    if prefix is None:
        raise ConfigurationError(
            f"{key}={provider!r} has no model prefix here",
            hint=f"write {model_keys[0]} as provider/NAME; for a server of your own, openai/NAME and its api_base",
        )
    name = str(out[model_key]).strip()
    first = name.partition("/")[0].lower()
    if first in _PROVIDERS.values() and first != prefix:  # (a Together name has its org first: meta-llama/…)
        raise ConfigurationError(f"{key}={provider!r} but {model_key}={name!r} names provider {first!r}",
                                 hint=f"leave {key} out; the prefix of {model_key} selects the provider")  # fmt: skip
    if first != prefix:
        out[model_key] = f"{prefix}/{name}"


def hf_name(value: Any) -> Any:
    """Upstream's `huggingface_dataset_name` values were bare Hub names (`squad_v2`): read as `hf:squad_v2`, never
    as a file path. A value that already says `hf:` or names an existing file is left as it is."""
    if isinstance(value, os.PathLike):
        return value
    if isinstance(value, str) and value.strip() and not value.startswith("hf:") and not _pathlike(value):
        return f"hf:{value.strip()}"
    return value


def _pathlike(value: str) -> bool:
    """An existing path, or an absolute one (a jobs file's relative path, resolved beside it): a file, not a name."""
    return os.path.exists(value) or os.path.isabs(value)


def check_not_callable(name: str, value: Any, hint: str) -> None:
    """A function given where a setting names one (`metric=my_fn`): refused with how to name it."""
    if callable(value) and not isinstance(value, str):
        raise ConfigurationError(f"{name} must name a function, got {getattr(value, '__name__', type(value).__name__)}",
                                 hint=hint)  # fmt: skip
