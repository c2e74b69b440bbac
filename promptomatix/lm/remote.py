"""Any litellm/DSPy model string (openai/…, anthropic/…, ollama_chat/…, an OpenAI-compatible api_base).

litellm is imported lazily and its errors are mapped here, once, to our typed errors (`raise … from e`).
The provider SDK's own retries are off (litellm `num_retries=0`, OpenAI SDK `max_retries=0`): the LM boundary
is the one retry layer, so every HTTP attempt is one counted call. Every request carries a timeout.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
from email.utils import parsedate_to_datetime
from typing import Any

from promptomatix.errors import LMCallError, ModelUnavailableError, PromptomatixError
from promptomatix.lm.answer import read_completion
from promptomatix.lm.deadline import DeadlinePassed, budget_time_left, call_within
from promptomatix.lm.types import Completion
from promptomatix.lm.urls import redact_text, redact_url, split_query
from promptomatix.sessions.secrets import ScrubFilter, remember_secret, scrub_exception

DEFAULT_REQUEST_TIMEOUT = 120.0
#: extra wall-clock seconds for a client's first request, which imports and sets up the provider SDK (1-2 s)
FIRST_CALL_GRACE = 3.0
_LITELLM_PREFIX = re.compile(r"^(litellm\.)?\w+(Error|Exception|Timeout): (\w+(Error|Exception|Timeout): )?(\w+ - )?")
_BAD_BODY = ("Expecting value", "invalid response", "JSONDecodeError", "Received response", "Unterminated string")
_PROVIDER_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "openai", "openai._base_client", "httpx", "httpcore",
                     "httpx2", "httpcore2", "httpcore.http11", "httpcore2.http11", "httpcore.connection",
                     "httpcore2.connection")  # fmt: skip
_PROVIDER_LOGGER_ROOTS = ("LiteLLM", "openai", "httpx", "httpcore", "httpx2", "httpcore2")
_TASK_FLAG = re.compile(r"(?<![\w-])--api-(key|base)\b")
_TIMEOUT_HINT = "is the server hung? if it is only slow, raise --request-timeout"
_NO_KEY = ("Missing credentials", "api_key client option must be set", "No API key provided")


class ProviderError(LMCallError):
    """A failed provider call, with what the boundary needs to decide on a retry."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        retryable: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
        unreachable: bool = False,
        hung: bool = False,
    ) -> None:
        super().__init__(message, hint=hint, retryable=retryable)
        self.status = status
        self.retry_after = retry_after
        self.unreachable = unreachable  # nothing listens there: when every retry says so, the model is gone
        self.hung = hung  # no answer in the time the run's budget had left: more time is not the fix


@functools.cache
def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    scrub_provider_loggers()
    return litellm


def scrub_provider_loggers() -> None:
    """A ScrubFilter on every logger of the provider libraries: their DEBUG logging quotes error bodies (which may
    quote the key), and the HTTP clients' INFO lines quote the request URL (userinfo, `?token=`). A logger's filter
    never sees its children's records, so each existing child (`httpcore2.http11`, `openai._base_client`) gets one
    too; the SDK's HTTP client may be `httpx` or its fork `httpx2`."""
    existing = [n for n in list(logging.Logger.manager.loggerDict) if isinstance(n, str)]
    names = {*_PROVIDER_LOGGERS, *(n for n in existing if n.split(".", 1)[0] in _PROVIDER_LOGGER_ROOTS)}
    for name in sorted(names):
        logger = logging.getLogger(name)
        if not any(isinstance(f, ScrubFilter) for f in logger.filters):
            logger.addFilter(ScrubFilter())


def _key_env(model: str) -> str:
    provider = model.split("/", 1)[0] if "/" in model else "openai"
    return f"{provider.upper()}_API_KEY"


class RemoteClient:
    """A ModelClient over litellm. The key is held in memory only, never in settings that get persisted."""

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        api_base: str | None = None,
        timeout: float = DEFAULT_REQUEST_TIMEOUT,
        teacher_endpoint: bool = False,
        **extra: Any,
    ):
        if timeout <= 0:
            raise ValueError("timeout must be > 0 seconds")
        self.model = model
        self._api_key = api_key
        remember_secret(api_key)  # scrubbed wherever it shows up: an --api-base path, an error body, a traceback
        self.api_base = api_base
        self.timeout = float(timeout)
        self.extra = extra
        self.teacher_endpoint = teacher_endpoint  # serves the teacher's (or judge's) own endpoint: hints name its flags
        self.provider: str | None = None
        self._checked = False
        self._sdk_client: Any = None
        self._warm = False  # the first request also loads litellm's provider code, which is not the server's time
        self._check_lock = threading.Lock()

    @property
    def where(self) -> str:
        """The server a message should name: the api_base without credentials, else the provider."""
        if self.api_base:
            return redact_url(self.api_base, self._api_key)
        return self.provider or self.model.split("/", 1)[0]

    def worst_cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """USD for a call of this size at litellm's list price, None when it has none (local servers, new
        models). The boundary asks it before a call under --max-usd, so the limit holds to the last call."""
        try:
            cost = _litellm().cost_per_token(
                model=self.model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
            )
        except Exception:
            return None
        return float(sum(cost))

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion:
        litellm = _litellm()
        self._precheck(litellm)
        limit, by_budget = self._time_limit()
        kwargs = self._request(messages, json_schema, max_tokens, temperature)
        kwargs["timeout"] = limit
        grace = 0.0 if self._warm else FIRST_CALL_GRACE
        try:
            resp = call_within(lambda: litellm.completion(**kwargs), limit + grace)
            self._warm = True
        except DeadlinePassed:
            raise self._too_slow(limit, by_budget) from None
        except Exception as e:
            if by_budget and _is_timeout(e):
                raise self._too_slow(limit, by_budget) from None
            raise self._wrap(e) from e
        return self._completion(litellm, resp, messages, max_tokens)

    def _time_limit(self) -> tuple[float, bool]:
        """Seconds this request may take (its whole time, not per read), and whether the time budget set it."""
        left = budget_time_left()
        if left is not None and left < self.timeout:
            return max(left, 0.05), True
        return self.timeout, False

    def _too_slow(self, limit: float, by_budget: bool) -> ProviderError:
        if by_budget:  # a hung server, not a small limit: raising either flag only waits longer for it
            return ProviderError(
                f"no answer from {self.where} ({self.model}) in the {limit:.0f} s left of the time budget",
                hint=f"check that the server at {self.where} is answering",
                hung=True,
            )
        return ProviderError(
            f"no answer from {self.where} ({self.model}) within {limit:g} s", hint=_TIMEOUT_HINT, retryable=True
        )

    def _request(
        self, messages: list[dict[str, str]], json_schema: Any, max_tokens: int | None, temperature: float | None
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, **self.extra}
        kwargs.update(timeout=self.timeout, num_retries=0, max_retries=0)
        if max_tokens:
            kwargs["max_tokens"] = max_tokens
        if temperature is not None:
            kwargs["temperature"] = temperature
        if self._api_key:
            kwargs["api_key"] = self._api_key
        if self.api_base:
            kwargs["api_base"] = self.api_base
            client = self._query_client()
            if client is not None:
                kwargs["client"] = client
        if json_schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": json_schema},
            }
        return kwargs

    def _query_client(self) -> Any:
        """For an OpenAI-compatible api_base with a query (`…/v1?api-key=K`): an OpenAI SDK client that sends the
        query with each request, since the SDK would glue the endpoint onto it. None otherwise."""
        base, query = split_query(self.api_base or "")
        if not query or self.provider != "openai":
            return None
        with self._check_lock:
            if self._sdk_client is None:
                import openai

                scrub_provider_loggers()  # loggers the SDK created on import
                self._sdk_client = openai.OpenAI(
                    api_key=self._api_key or os.environ.get("OPENAI_API_KEY") or "none",
                    base_url=base,
                    default_query=query,
                    max_retries=0,
                    timeout=self.timeout,
                )
            return self._sdk_client

    def _completion(
        self, litellm: Any, resp: Any, messages: list[dict[str, str]], max_tokens: int | None
    ) -> Completion:
        try:
            text = resp.choices[0].message.content or ""
        except (AttributeError, IndexError, TypeError):
            raise ProviderError(
                f"unreadable response from {self.where}: no choices in the answer",
                hint="check that --api-base points at an OpenAI-compatible /v1 endpoint",
            ) from None
        if not isinstance(text, str):
            raise ProviderError(
                f"unreadable response from {self.where}: the answer's content is {type(text).__name__}, not text",
                hint="check that --api-base points at an OpenAI-compatible /v1 endpoint",
            )
        return read_completion(litellm, resp, model=self.model, text=text, messages=messages, max_tokens=max_tokens)

    def _precheck(self, litellm: Any) -> None:
        """Once per client: an unknown model string or a missing key fails here, before any request."""
        with self._check_lock:
            if self._checked:
                return
            try:
                self.provider = litellm.get_llm_provider(self.model, api_base=self.api_base)[1]
            except Exception:
                raise ModelUnavailableError(
                    f"unknown model '{self.model}'",
                    hint="write provider/model, e.g. openai/gpt-4o-mini, or a local model from `promptomatix models list`",
                ) from None
            if not self._api_key:
                missing = _missing_keys(litellm, self.model, self.api_base)
                if missing:
                    any_value = "; any value does for a server that checks none" if self.api_base else ""
                    raise ModelUnavailableError(f"{self.model}: no API key", hint=self._flags(
                        f"set {' or '.join(missing)} or pass --api-key{any_value}"))  # fmt: skip
            self._checked = True

    def _wrap(self, e: Exception) -> PromptomatixError:
        """One provider exception → our typed error, named by what the user can do about it."""
        scrub_exception(e, self._api_key)  # the chain is printed under PROMPTOMATIX_DEBUG=1
        err = classify(e, model=self.model, where=self.where, timeout=self.timeout, api_key=self._api_key)
        if err.hint and self.teacher_endpoint:
            from promptomatix.errors import _line

            err.hint = self._flags(err.hint)
            err.args = (_line(err.message, err.hint),)
        return err

    def _flags(self, hint: str) -> str:
        """The teacher's endpoint is given with --teacher-api-key/--teacher-api-base, not the task's flags."""
        return _TASK_FLAG.sub(r"--teacher-api-\1", hint) if self.teacher_endpoint else hint


def _missing_keys(litellm: Any, model: str, api_base: str | None) -> list[str]:
    try:
        env = litellm.validate_environment(model=model, api_base=api_base)
    except Exception:
        return []  # a provider litellm cannot check: let the first request say
    if env.get("keys_in_environment"):
        return []
    return [str(k) for k in env.get("missing_keys") or []]


def classify(e: Exception, *, model: str, where: str, timeout: float, api_key: str | None = None) -> PromptomatixError:
    name = type(e).__name__
    chain = _cause_names(e)
    detail = _detail(e, api_key)
    status = getattr(e, "status_code", None)
    key_hint = "check the key given with --api-key" if api_key else f"check {_key_env(model)} or pass --api-key"
    if any(s in detail for s in _NO_KEY):
        return ModelUnavailableError(f"{model}: no API key", hint=f"set {_key_env(model)} or pass --api-key")
    if "ConnectionRefusedError" in chain:
        return ProviderError(
            f"connection refused at {where}", hint="is the server running?", retryable=True, unreachable=True
        )
    if "timeout" in name.lower() or any("Timeout" in c for c in chain):
        return ProviderError(
            f"no answer from {where} ({model}) within {timeout:g} s", hint=_TIMEOUT_HINT, retryable=True
        )
    if "ConnectionResetError" in chain:  # it took the request, then dropped it: the address is right
        return ProviderError(
            f"connection reset by {where} during the request", hint="check the server's log", retryable=True
        )
    if "ConnectError" in chain or "APIConnectionError" in chain:
        return ProviderError(f"could not connect to {where}: {detail}", hint="check --api-base", retryable=True)
    if name in ("AuthenticationError", "PermissionDeniedError") or status in (401, 403):
        return ModelUnavailableError(f"HTTP {status or 401} from {where}", hint=key_hint)
    if name == "NotFoundError" or status == 404:
        return ModelUnavailableError(
            f"HTTP 404 from {where}: {detail}", hint=f"check the model name ({model}) and --api-base (…/v1)"
        )
    if "Invalid response object" in str(e):  # a 200 litellm could not convert (e.g. "prompt_tokens": "abc")
        return ProviderError(
            f"unreadable response from {where}: the answer's fields have the wrong types ({_own_error(e)})",
            hint="check that --api-base points at an OpenAI-compatible /v1 endpoint",
        )
    if _bad_body(e, detail):
        return ProviderError(
            f"unreadable response from {where}: not a chat completion ({detail[:120]})",
            hint="check that --api-base points at an OpenAI-compatible /v1 endpoint",
        )
    if name == "RateLimitError" or status == 429:
        return ProviderError(
            f"HTTP 429 (rate limited) from {where}",
            hint="lower --threads or wait",
            retryable=True,
            status=429,
            retry_after=retry_after_seconds(e),
        )
    if (isinstance(status, int) and status >= 500) or name in ("InternalServerError", "ServiceUnavailableError"):
        return ProviderError(
            f"HTTP {status or 500} from {where}: {detail}",
            retryable=True,
            status=status,
            retry_after=retry_after_seconds(e),
        )
    return ProviderError(f"{model}: {name}: {detail}", status=status if isinstance(status, int) else None)


def _is_timeout(e: BaseException) -> bool:
    return "timeout" in type(e).__name__.lower() or any("Timeout" in c for c in _cause_names(e))


def _cause_names(e: BaseException) -> list[str]:
    names: list[str] = []
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen and len(names) < 12:
        seen.add(id(cur))
        names.append(type(cur).__name__)
        cur = cur.__cause__ or cur.__context__
    return names


def _detail(e: Exception, api_key: str | None) -> str:
    """The provider's own first line, without litellm's class-name prefixes, URLs' credentials or the key."""
    text = str(e).strip()
    first = text.splitlines()[0] if text else type(e).__name__
    return redact_text(_LITELLM_PREFIX.sub("", first), api_key)[:200]


def _own_error(e: Exception) -> str:
    """The last line of the traceback litellm puts in an "Invalid response object" error: what failed in it."""
    lines = [ln.strip() for ln in str(e).split("received_args=", 1)[0].splitlines() if ln.strip()]
    named = [ln for ln in lines if re.match(r"^[\w.]+(Error|Exception)\b", ln)]
    at = lines.index(named[-1]) if named else -1
    text = " ".join(lines[at : at + 3]) if named else type(e).__name__  # pydantic: the field and what it got
    return redact_text(text)[:160]


def _bad_body(e: Exception, detail: str) -> bool:
    """litellm reports a 200 with a body it cannot parse as a synthetic 500 with no response headers."""
    return any(s in str(e) for s in _BAD_BODY) and not _headers(e)


def _headers(e: Exception) -> dict[str, str]:
    for source in (
        getattr(getattr(e, "response", None), "headers", None),
        getattr(e, "litellm_response_headers", None),
    ):
        try:
            if source:
                return {str(k).lower(): str(v) for k, v in dict(source).items()}
        except (TypeError, ValueError):
            continue
    return {}


def retry_after_seconds(e: Exception, now: float | None = None) -> float | None:
    """The server's Retry-After (seconds or an HTTP date; retry-after-ms too), or None."""
    headers = _headers(e)
    if "retry-after-ms" in headers:
        try:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - (time.time() if now is None else now))
