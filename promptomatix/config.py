"""RunConfig: every setting of one optimization run, validated once. CLI flags and `process_input` kwargs
(including upstream's spellings) both end up here; nothing else reads settings."""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from promptomatix.errors import ConfigurationError, PluginError
from promptomatix.lm.boundary import Budget
from promptomatix.lm.factory import DEFAULT_MODEL, ModelSettings
from promptomatix.logsetup import install as _install_log_handler
from promptomatix.upstream import IGNORED as UPSTREAM_IGNORED
from promptomatix.upstream import IMPLIED as UPSTREAM_IMPLIED

#: upstream kwarg/flag → our field (upstream notes §2-§3). Values are passed through validation unchanged.
ALIASES: dict[str, str] = {
    "human_input": "raw_input",
    "model_name": "model",
    "model_api_key": "api_key",
    "model_api_base": "api_base",
    "config_model_name": "teacher_model",
    "teacher": "teacher_model",
    "huggingface_dataset_name": "data",
    "search": "search_type",
    "dspy_optimizer_name": "dspy_optimizer",
    "trainer": "dspy_optimizer",
    "config_max_tokens": "teacher_max_tokens",
    "config_temperature": "teacher_temperature",
    "config_model_api_key": "teacher_api_key",
    "config_model_api_base": "teacher_api_base",
}
#: Past this, --synthetic-data-size is a typo or a run of days: a local model writes a row in seconds.
MAX_SYNTHETIC_ROWS = 10_000
#: upstream kwargs accepted with a warning (upstream never used them); the rest of upstream's names are mapped or
#: refused in `promptomatix.upstream`.
IGNORED = UPSTREAM_IGNORED | UPSTREAM_IMPLIED
_install_log_handler()  # (every API call reads a RunConfig: the library's WARNINGs stay off a host's stderr)
_METRIC_HINT = "pass metric='module:function' or 'file.py:function', or promptomatix.register_metric(task_type, fn)"


class RunConfig(BaseModel):
    """One run's settings. The API key is a SecretStr that is excluded from every dump (sessions, logs)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    raw_input: str = ""
    # models
    model: str = DEFAULT_MODEL
    teacher_model: str | None = None
    judge_model: str | None = None
    api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)
    api_base: str | None = None
    # the teacher's (and judge's) own endpoint (upstream's config_model_api_*); None: the task model's
    teacher_api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)
    teacher_api_base: str | None = None
    # saved with a session (never the key): the teacher had its own key, which a follow-up must be given again
    teacher_own_key: bool = False
    n_parallel: int = Field(default=4, ge=1, le=64)
    request_timeout: float = Field(default=120.0, gt=0)  # seconds per remote request; a hung call ends then
    # sampling (upstream's meaning: max_tokens caps each task completion; config_* are the teacher's)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    teacher_max_tokens: int | None = Field(default=None, ge=1)
    teacher_temperature: float | None = Field(default=None, ge=0, le=2)
    # backend
    backend: str = "simple_meta_prompt"  # a registered backend (promptomatix.backends.registry)
    backend_options: dict[str, Any] = Field(default_factory=dict)  # the backend's own settings, by name
    search_type: str = "quick"
    rounds: int | None = Field(default=None, ge=0)
    candidates_per_round: int | None = Field(default=None, ge=1)
    minibatch_size: int | None = Field(default=None, ge=1)
    meta_prompts: list[str] = Field(default_factory=list)
    dspy_module: str = "predict"
    dspy_optimizer: str = "miprov2"
    # task spec (given parts are kept as given)
    task_type: str | None = None
    task_description: str | None = None
    input_fields: list[str] | None = None
    output_fields: list[str] | None = None
    labels: list[str] | None = None
    output_format: str | None = None
    sample_data: list[dict[str, Any]] | str | None = None
    initial_prompt: str | None = None
    constraints: list[str] | None = None
    # data
    data: str | None = None
    train_data: list[dict[str, Any]] | None = None
    valid_data: list[dict[str, Any]] | None = None
    test_data: list[dict[str, Any]] | None = None
    local_train_data_path: str | None = None
    local_test_data_path: str | None = None
    synthetic_data_size: int = Field(default=30, ge=0, le=MAX_SYNTHETIC_ROWS)
    train_data_size: int | None = Field(default=None, ge=1)  # a search needs train and valid rows; only the
    valid_data_size: int | None = Field(default=None, ge=1)  # held-out test may be 0 (no verdict, said so)
    test_data_size: int | None = Field(default=None, ge=0)
    train_ratio: float | None = Field(default=None, gt=0, lt=1)
    verify_synthetic: bool = False
    synthetic_batch_size: int | None = Field(default=None, ge=1)  # None: 1 for a local teacher, else 5

    def batch_size_for_teacher(self, teacher_model: str | None = None) -> int:
        """Small local teachers cannot fill arrays of examples; they write one labelled example per call."""
        from promptomatix.lm.factory import is_local

        if self.synthetic_batch_size:
            return self.synthetic_batch_size
        return 1 if is_local(teacher_model or self.teacher_model or self.model) else 5

    # scoring
    lambda_penalty: float = Field(default=0.005, ge=0, allow_inf_nan=False)
    metric: str | None = None
    # run
    seed: int = Field(default=0, ge=0, le=2**32 - 1)  # numpy's and DSPy's seeds take no other
    num_threads: int = Field(default=4, ge=1, le=64)
    max_calls: int | None = Field(default=None, ge=1)  # 0 can only fail (after the spec call, a failed session)
    max_total_tokens: int | None = Field(default=None, ge=0)  # the run's token budget (prompt + completion)
    max_usd: float | None = Field(default=None, ge=0)
    max_minutes: float | None = Field(default=None, gt=0)
    sessions_dir: str | None = None
    dry_run: bool = False

    @field_validator("input_fields", "output_fields", "labels", "constraints", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [p.strip() for p in v.split(",") if p.strip()]
        if isinstance(v, (list, tuple)) and len(v) == 1 and isinstance(v[0], str) and "," in v[0]:
            return [p.strip() for p in v[0].split(",") if p.strip()]
        return v

    @model_validator(mode="after")
    def _fields_once(self) -> RunConfig:
        """A field named twice (`--output-fields label,label`, or as an input and an output) is the caller's
        error, refused before a session exists (the task spec refused it later, leaving a failed session)."""
        ins, outs = self.input_fields or [], self.output_fields or []
        for what, names in (("input", ins), ("output", outs)):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"the {what} fields name {', '.join(twice)} more than once; name each field once")
        both = sorted(set(ins) & set(outs))
        if both:
            raise ValueError(f"{', '.join(both)} is both an input and an output field; name it in one of them")
        self._labels_once()
        self._remember_key()
        return self

    def _remember_key(self) -> None:
        """The key is scrubbed from the first session write on: a key that is also a path segment of --api-base
        was written to session.json before the client that remembered it was built (and never, with given clients)."""
        from promptomatix.sessions.secrets import remember_secret

        for key in (self.api_key, self.teacher_api_key):
            if key is not None:
                remember_secret(key.get_secret_value())

    def _labels_once(self) -> None:
        """`--labels positive,positive` (a typo) became a one-label set past the two-label check: half the data
        was dropped and a one-label classifier scored 1.000. Labels that read the same once scored are one."""
        from promptomatix.metrics.text import normalize_label

        seen: dict[str, str] = {}
        for label in self.labels or []:
            if (key := normalize_label(label)) in seen:
                same = f"{seen[key]!r} more than once" if seen[key] == label else f"{seen[key]!r} and {label!r}"
                raise ValueError(f"the labels name {same}, one label once scored; name each label once")
            seen[key] = label

    @field_validator("sessions_dir", mode="before")
    @classmethod
    def _dir(cls, v: Any) -> Any:
        return os.fspath(v) if isinstance(v, os.PathLike) else v

    @field_validator("data", "local_train_data_path", "local_test_data_path", mode="before")
    @classmethod
    def _path(cls, v: Any) -> Any:
        """A `pathlib.Path` is taken as its text (it was refused as "not a valid string"); an empty path (an unset
        `$DATA`) is refused, not read as "no data" (which planned 30 teacher-written rows); a URL is refused with
        the fix, not mangled into `https:/…: file not found`; a named pipe or device, which hung the run."""
        if isinstance(v, os.PathLike):
            v = os.fspath(v)
        if not isinstance(v, str):
            return v
        if not v.strip():
            raise ValueError("an empty path (is the variable that should hold it unset?); leave it out for no data")
        from promptomatix.data.textfiles import special_file_message, url_message

        if (message := url_message(v) or special_file_message(v)) is not None:
            raise ValueError(message)  # a named pipe: refused before a session exists, never opened (it blocks)
        return v

    @field_validator("api_base", "teacher_api_base", mode="before")
    @classmethod
    def _api_base(cls, v: Any) -> Any:
        """A server URL without its scheme (`127.0.0.1:8000/v1`) reached no server: every call failed and was
        retried (36 retry lines, 32 s) before "could not connect"; refused before anything starts."""
        if isinstance(v, str) and v.strip() and "://" not in v:
            from promptomatix.sessions.urls import strip_url_credentials

            shown = strip_url_credentials(v.strip())  # the value may carry a password: never echoed
            raise ValueError(f"the server URL has no scheme; write it as http://{shown} (or https://…)")
        return v

    @field_validator("metric", mode="before")
    @classmethod
    def _metric(cls, v: Any) -> Any:
        """A function is refused with how to name one: the session stores the metric to resume with."""
        from promptomatix.upstream import check_not_callable

        check_not_callable("metric", v, _METRIC_HINT)
        return v

    @field_validator("search_type", mode="before")
    @classmethod
    def _search(cls, v: Any) -> Any:
        key = str(v or "quick").replace("_search", "").lower()
        if key not in ("quick", "moderate", "heavy"):
            raise ValueError("search_type must be quick, moderate or heavy")
        return key

    @field_validator("backend", mode="before")
    @classmethod
    def _backend(cls, v: Any) -> Any:
        """A registered backend's name (aliases resolve); a typo lists the registered names."""
        if not isinstance(v, str):
            return v
        from promptomatix.backends.registry import canonical_backend

        try:
            return canonical_backend(v)
        except PluginError:
            raise  # a broken plugin is not a wrong value: it keeps its own message (and exit 1)
        except ConfigurationError as e:
            raise ValueError(f"{e.message} ({e.hint})") from None

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> RunConfig:
        """Accept ours and upstream's names; unknown names are an error that lists the near misses."""
        from promptomatix.upstream import check_not_callable, translate

        check_not_callable("metric", kwargs.get("metric"), _METRIC_HINT)  # (its own line, not pydantic's)
        merged: dict[str, Any] = {}
        for key, value in translate(kwargs).items():
            name = ALIASES.get(key, key)
            if name == "dspy_optimizer" and str(value).lower() == "miprov2":
                value = "miprov2"
            if name not in cls.model_fields:
                import difflib

                close = difflib.get_close_matches(name, list(cls.model_fields) + list(ALIASES), n=3)
                raise ConfigurationError(
                    f"unknown setting '{key}'", hint=f"did you mean {', '.join(close)}?" if close else "see the README"
                )
            merged[name] = value
        for secret in ("api_key", "teacher_api_key"):
            if isinstance(merged.get(secret), str):
                merged[secret] = SecretStr(merged[secret])
        try:
            return cls(**merged)
        except ValueError as e:  # pydantic ValidationError → one line naming the field
            raise ConfigurationError(_first_error(e), hint="check the value") from None

    def model_settings(self) -> ModelSettings:
        return ModelSettings(
            model=self.model,
            teacher_model=self.teacher_model,
            judge_model=self.judge_model,
            api_key=self.api_key,
            api_base=self.api_base,
            teacher_api_key=self.teacher_api_key,
            teacher_api_base=self.teacher_api_base,
            n_parallel=self.n_parallel,
            request_timeout=self.request_timeout,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            teacher_max_tokens=self.teacher_max_tokens,
            teacher_temperature=self.teacher_temperature,
        )

    def budget(self) -> Budget:
        return Budget(
            max_calls=self.max_calls,
            max_tokens=self.max_total_tokens,
            max_usd=self.max_usd,
            max_seconds=self.max_minutes * 60 if self.max_minutes else None,
        )

    def persistable(self) -> dict[str, Any]:
        """What a session stores to resume with: no key, and user rows live in the session's data block."""
        secrets_and_rows = {"api_key", "teacher_api_key", "train_data", "valid_data", "test_data"}
        saved = self.model_dump(mode="json", exclude=secrets_and_rows)
        from promptomatix.lm.factory import is_local

        remote = not is_local(self.teacher_model or self.model)  # a local teacher ignores keys
        saved["teacher_own_key"] = self.teacher_own_key or (self.teacher_api_key is not None and remote)
        return saved


def _first_error(e: Exception) -> str:
    errors = getattr(e, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        msg = str(first.get("msg", "")).removeprefix("Value error, ")
        return f"invalid {where}: {msg}" if where else msg  # (a check of the whole config has no field)
    return str(e).splitlines()[0]
