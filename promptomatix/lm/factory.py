"""Model strings → clients → a run's LM boundary. The only place that decides which client serves a string."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from promptomatix.errors import PluginError
from promptomatix.lm.boundary import Budget, LMBoundary, ModelClient, RetryPolicy, RoleSettings, UsageReport
from promptomatix.lm.cache import ResponseCache
from promptomatix.lm.catalog import DEFAULT_LOCAL_MODEL, KNOWN_MODELS

DEFAULT_MODEL = f"local/{DEFAULT_LOCAL_MODEL}"


class ModelSettings(BaseModel):
    """Which models a run uses. The API key is a SecretStr and is excluded from every dump (sessions, logs)."""

    model_config = ConfigDict(extra="forbid")

    model: str = DEFAULT_MODEL
    teacher_model: str | None = None
    judge_model: str | None = None
    api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)
    api_base: str | None = None
    # the teacher's own endpoint (upstream's config_model_api_*); the judge, which defaults to the teacher, too.
    # None: the teacher shares the task model's key and base
    teacher_api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)
    teacher_api_base: str | None = None
    n_parallel: int = Field(default=4, ge=1, le=64)
    request_timeout: float = Field(default=120.0, gt=0)  # seconds per HTTP request to a remote model
    max_tokens: int | None = Field(default=None, ge=1)  # cap on each task completion (None: the role default)
    temperature: float | None = Field(default=None, ge=0, le=2)  # the task model's temperature
    teacher_max_tokens: int | None = Field(default=None, ge=1)
    teacher_temperature: float | None = Field(default=None, ge=0, le=2)

    def endpoint(self, role: str, model: str | None = None) -> tuple[SecretStr | None, str | None]:
        """The key and base of a role's server (`model`: the string the role runs; default: its fallback chain).

        The teacher and judge have their own endpoint when one was given: a teacher key with no teacher base means
        the teacher's provider's own URL (upstream's `config_model_api_key` alone), never the task model's server.
        A key is lent to another role only when both use the same server (same base, or both none) and the same
        provider: the task's key never reaches the teacher's server, nor an Anthropic teacher an OpenAI key (such a
        role gets no key, and its provider's environment variable is read as usual)."""
        if role == "task":
            return self.api_key, self.api_base
        teacher = self.teacher_model or self.model
        model = model or (teacher if role == "teacher" else self.judge_model or teacher)
        if self.teacher_api_base:
            base = self.teacher_api_base
        elif self.teacher_api_key is not None:
            base = None
            if not self.teacher_model and self.api_base and model == self.model and not is_local(model):
                from promptomatix.errors import ConfigurationError

                raise ConfigurationError(
                    f"a teacher key was given without a teacher server or model: the teacher ({self.model}) would "
                    f"call its provider's default URL, not {_shown_base(self.api_base)}",
                    hint="pass --teacher-model (and --teacher-api-base for its server), or drop --teacher-api-key "
                    "(unset PROMPTOMATIX_TEACHER_API_KEY)",
                )
        else:
            base = self.api_base
        if self.teacher_api_key is not None and _provider(model) == _provider(teacher):
            return self.teacher_api_key, base
        if base == self.api_base and _provider(model) == _provider(self.model):
            return self.api_key, base
        return None, base

    def role_settings(self) -> dict[str, RoleSettings]:
        return {
            "task": RoleSettings(max_tokens=self.max_tokens, temperature=self.temperature),
            "teacher": RoleSettings(max_tokens=self.teacher_max_tokens, temperature=self.teacher_temperature),
        }


def _provider(model: str) -> str:
    """The provider part of a model string (`openai/x` → openai); local models are one provider."""
    m = normalize_model_string(model)
    return "local" if is_local(m) else (m.split("/", 1)[0] if "/" in m else m)


def _shown_base(base: str) -> str:
    from promptomatix.sessions.secrets import scrub_text
    from promptomatix.sessions.urls import strip_url_credentials

    try:
        return scrub_text(strip_url_credentials(base))
    except Exception:  # pragma: no cover - never show a credential because a URL did not parse
        return "the task model's --api-base"


def normalize_model_string(model: str) -> str:
    """`smollm2-135m` → `local/smollm2-135m`; a path to a .gguf → `local:/path`; others unchanged."""
    m = model.strip()
    if m in KNOWN_MODELS:
        return f"local/{m}"
    if m.endswith(".gguf") and not m.startswith("local:"):
        return f"local:{m}"
    return m


def is_local(model: str) -> bool:
    m = normalize_model_string(model)
    return m.startswith("local/") or m.startswith("local:")


def create_client(
    model: str,
    *,
    api_key: str | None = None,
    api_base: str | None = None,
    n_parallel: int = 4,
    auto_pull: bool = True,
    on_message: Callable[[str], None] | None = None,
    request_timeout: float = 120.0,
    **extra: Any,
) -> ModelClient:
    """The client for one model string, from the provider that serves it (built-ins: local, litellm; plugins add
    more). A GGUF that is missing or not a GGUF fails here, with the fix."""
    from promptomatix.lm.providers import ClientOptions, provider_registry

    model = normalize_model_string(model)
    options = ClientOptions(
        api_key=api_key,
        api_base=api_base,
        n_parallel=n_parallel,
        auto_pull=auto_pull,
        on_message=on_message,
        request_timeout=request_timeout,
        extra=dict(extra),
    )
    from promptomatix.plugins.manager import BUILTINS, plugin_code

    provider = provider_registry().for_model(model)
    with plugin_code(provider.plugin, f"model provider {provider.name!r} for {model!r}"):
        client = provider.factory(model, options)
    if not callable(getattr(client, "complete", None)):
        raise PluginError(
            f"model provider {provider.name!r} ({provider.plugin or 'user code'}) returned "
            f"{type(client).__name__} for {model!r}, which has no complete()",
            hint="the factory must return a ModelClient", plugin=provider.plugin,
        )  # fmt: skip
    if provider.plugin and provider.plugin != BUILTINS:
        from promptomatix.lm.guarded import PluginClient

        if on_message is not None:  # a plugin may serve `openai/...` strings too: the run says whose client it is
            on_message(f"{model} is served by plugin {provider.plugin} (its model provider {provider.name!r})")
        return PluginClient(client, provider.plugin, provider.name)
    return client


def check_models(settings: ModelSettings, clients: dict[str, ModelClient] | None = None) -> None:
    """Find the provider of every model string the run will build a client for, before its session opens: a
    provider plugin whose matcher raises (or a string no provider serves) fails the run with nothing left behind
    (a dry run left a `failed` session), and a `local/NAME` or `local:PATH` that names no model. Builds no
    client, so nothing is loaded, pulled or called."""
    from promptomatix.lm.providers import provider_registry

    registry = provider_registry()
    for model in _model_strings(settings, clients if isinstance(clients, dict) else {}):
        provider = registry.for_model(model := normalize_model_string(model))
        if provider.name == "local" and _is_builtin(provider):
            from promptomatix.lm.catalog import check_local_model

            check_local_model(model)  # an unknown name or a missing GGUF: found when the client was built


def check_model_values(settings: ModelSettings, clients: dict[str, ModelClient] | None = None) -> None:
    """`check_models`, and a string the built-in litellm provider serves is one litellm knows a provider for (a
    typo like `nosuch/model-x` was found at the first call, after retries). Imports litellm for such strings only:
    the CLI runs it before `optimize`, whose run would import it anyway."""
    from promptomatix.errors import ModelUnavailableError
    from promptomatix.lm.providers import provider_registry

    for model in _model_strings(settings, clients if isinstance(clients, dict) else {}):
        _check_model_shape(normalize_model_string(model))
    check_models(settings, clients)
    registry = provider_registry()
    for model, role in _model_roles(settings, clients if isinstance(clients, dict) else {}):
        provider = registry.for_model(model := normalize_model_string(model))
        if provider.name != "litellm" or not _is_builtin(provider):
            continue
        from promptomatix.lm.remote import _litellm

        try:
            _litellm().get_llm_provider(model, api_base=settings.endpoint(role, model)[1])
        except Exception:
            raise ModelUnavailableError(
                f"unknown model {model!r}: litellm knows no provider for it",
                hint="write provider/model, e.g. openai/gpt-4o-mini, or a local model from `promptomatix models list`",
            ) from None


def _check_model_shape(model: str) -> None:
    """A server URL given as the model ("unknown model" did not say where a URL goes) and a provider with no model
    name after it (`openai/` sent `"model": ""` to the server)."""
    from promptomatix.errors import ModelUnavailableError

    if "://" in model:
        raise ModelUnavailableError(f"--model {model!r} is a URL, not a model name",
                                    hint="pass the server as --api-base URL and the model as provider/NAME, e.g. "
                                    "--api-base http://127.0.0.1:8000/v1 --model openai/NAME")  # fmt: skip
    provider, sep, name = model.partition("/")
    if sep and not name.strip():
        raise ModelUnavailableError(f"--model {model!r} names no model after {provider}/",
                                    hint=f"write {provider}/NAME, e.g. openai/gpt-4o-mini")  # fmt: skip


def _is_builtin(provider: Any) -> bool:
    from promptomatix.plugins.manager import BUILTINS

    return provider.plugin in (None, "", BUILTINS)


def _model_strings(settings: ModelSettings, clients: dict[str, Any]) -> list[str]:
    """The model strings build_boundary makes clients for: each role not given a client, by its fallback chain."""
    return list(dict.fromkeys(m for m, _ in _model_roles(settings, clients)))


def _model_roles(settings: ModelSettings, clients: dict[str, Any]) -> list[tuple[str, str]]:
    """(model string, role) for each role build_boundary makes a client for, by its fallback chain: a role without
    a model of its own shares the client of the role before it (the teacher the task model's, on the teacher's own
    server when it has one; the judge the teacher's)."""
    task = None if "task" in clients else settings.model
    teacher = None if "teacher" in clients else (settings.teacher_model or _own_server(settings, task))
    judge = None if "judge" in clients else settings.judge_model
    return [(m, role) for m, role in ((task, "task"), (teacher, "teacher"), (judge, "judge")) if m]


def _own_server(settings: ModelSettings, task: str | None) -> str | None:
    """The task model's string for a teacher that has a server of its own (None: it shares the task's client). A
    local task model cannot be served from a URL: a teacher endpoint without a teacher model is refused."""
    if task is None:
        return None
    if is_local(task):  # the local provider ignores keys and URLs: the teacher is the task's own client
        if settings.teacher_api_base:
            from promptomatix.errors import ConfigurationError

            raise ConfigurationError(
                f"--teacher-api-base was given but no teacher model: the task model {task} is local and cannot be "
                "served from a URL", hint="pass --teacher-model provider/NAME (e.g. --teacher-model openai/gpt-4o-mini)"
            )
        return None
    return task if settings.endpoint("teacher", task) != settings.endpoint("task") else None


def local_client(model: str, options: Any) -> ModelClient:
    """The built-in `local` provider: local/NAME from the catalogue (pulled on first use) or local:/path.gguf."""
    from promptomatix.lm.catalog import resolve_local_model
    from promptomatix.lm.local import LocalClient

    path = resolve_local_model(model, auto_pull=options.auto_pull, on_message=options.on_message)
    return LocalClient(Path(path), model=model, n_parallel=options.n_parallel)


def litellm_client(model: str, options: Any) -> ModelClient:
    """The built-in fallback provider: any litellm/DSPy model string (openai/..., anthropic/..., ollama_chat/...)."""
    from promptomatix.lm.remote import RemoteClient

    return RemoteClient(
        model, api_key=options.api_key, api_base=options.api_base, timeout=options.request_timeout, **options.extra
    )


def _offline_price_list() -> None:
    """litellm fetches its price list from the network when it is imported, unless this variable is set; DSPy may
    import it at any later point of the run, so it is set before, and only while litellm is not loaded yet: a host
    that imported litellm itself keeps its environment as it was."""
    if "litellm" not in sys.modules:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def build_boundary(
    settings: ModelSettings,
    *,
    budget: Budget | None = None,
    cache_path: Path | str | None = None,
    clients: dict[str, ModelClient] | None = None,
    retry: RetryPolicy | None = None,
    on_call: Callable[[UsageReport], None] | None = None,
    on_message: Callable[[str], None] | None = None,
) -> LMBoundary:
    """Build the boundary of one run. `clients` (e.g. FakeLMs) override model strings, for tests and benchmarks."""
    _offline_price_list()
    if clients is not None and (not isinstance(clients, dict) or set(clients) - {"task", "teacher", "judge"}):
        from promptomatix.errors import ConfigurationError  # (a string raised "dictionary update sequence")

        raise ConfigurationError(
            f"clients must be a dict by role (task, teacher, judge), got {type(clients).__name__}"
            + (f" with {sorted(map(str, clients))}" if isinstance(clients, dict) else ""),
            hint='pass e.g. clients={"task": my_client}',
        )
    built: dict[str, ModelClient] = dict(clients or {})
    cache: dict[tuple[str, str | None, str | None], ModelClient] = {}

    def client_for(model_string: str, role: str) -> ModelClient:
        secret, base = settings.endpoint(role, model_string)
        key = secret.get_secret_value() if secret else None
        # a role not on the task's endpoint: its errors name --teacher-api-key/--teacher-api-base
        extra = {"teacher_endpoint": True} if (secret, base) != settings.endpoint("task") else {}
        if (model_string, key, base) not in cache:  # one client per model and server (a local model loads once)
            cache[(model_string, key, base)] = create_client(
                model_string, api_key=key, api_base=base, n_parallel=settings.n_parallel, on_message=on_message,
                request_timeout=settings.request_timeout, **extra,
            )  # fmt: skip
        return cache[(model_string, key, base)]

    if "task" not in built:
        built["task"] = client_for(settings.model, "task")
    if "teacher" not in built:
        teacher = settings.teacher_model or _own_server(settings, None if "task" in (clients or {}) else settings.model)
        built["teacher"] = client_for(teacher, "teacher") if teacher else built["task"]
    if "judge" not in built:
        judge = settings.judge_model
        built["judge"] = client_for(judge, "judge") if judge else built["teacher"]
    return LMBoundary(
        built,
        budget=budget,
        cache=ResponseCache(cache_path),
        retry=retry,
        on_call=on_call,
        role_settings=settings.role_settings(),
    )
