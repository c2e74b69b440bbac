"""The embedded model: llama.cpp in-process through the prebuilt xllamacpp wheel.

One loaded model is shared per (path, settings) within a process: loading costs seconds and hundreds of MB, and
xllamacpp's server is thread-safe with parallel slots (continuous batching), so concurrent evaluation threads
really overlap. The pool holds resources, not run state: accounting and budgets live in the run's LM boundary.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from promptomatix.errors import ConfigurationError, LMCallError, ModelUnavailableError
from promptomatix.lm.types import Completion

log = logging.getLogger(__name__)

_POOL: dict[tuple[str, int, int], Any] = {}
_POOL_LOCK = threading.Lock()


def _load_server(path: Path, n_parallel: int, n_ctx: int) -> Any:
    key = (str(path), n_parallel, n_ctx)
    with _POOL_LOCK:
        server = _POOL.get(key)
        if server is not None:
            return server
        try:
            import xllamacpp as xlc
        except ImportError as e:
            raise ModelUnavailableError(
                "the embedded model needs the xllamacpp package",
                hint='install it with pip install -e ".[local]" (or pip install xllamacpp)',
            ) from e
        params = xlc.CommonParams()
        params.model.path = str(path)
        params.n_parallel = n_parallel
        params.n_ctx = n_ctx * n_parallel  # each slot gets n_ctx tokens
        params.cpuparams.n_threads = int(os.environ.get("PROMPTOMATIX_THREADS", os.cpu_count() or 2))
        params.cpuparams_batch.n_threads = params.cpuparams.n_threads
        params.verbosity = -1 if not os.environ.get("PROMPTOMATIX_LLAMA_VERBOSE") else 3
        try:
            server = xlc.Server(params)
        except Exception as e:  # xllamacpp raises plain RuntimeErrors on bad files
            raise ModelUnavailableError(
                f"could not load GGUF {path}: {e}", hint="check the file is a valid GGUF (re-pull it)"
            ) from e
        _POOL[key] = server
        return server


def _check_gguf(path: Path) -> None:
    """A GGUF file starts with the magic b"GGUF": checking it here names the problem before llama.cpp fails."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise ModelUnavailableError(
            f"cannot read GGUF file {path}: {e.strerror}", hint="check the path and its permissions"
        ) from e
    if head != b"GGUF":
        what = "is empty" if not head else f"starts with {head!r}, not GGUF"
        raise ModelUnavailableError(
            f"{path} is not a GGUF model file ({what})",
            hint="pass a .gguf file, or a known model such as local/smollm2-135m",
        )


def request_seed(request: dict[str, Any]) -> int:
    """A sampling seed derived from the request itself, so a seeded run (whose prompts carry the run's seed in
    their diversity hints) samples the same text again. Batched decoding of concurrent requests can still differ
    in the last float bits; benchmarks/readme_runs.py measures how often that changes a run."""
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class LocalClient:
    """A ModelClient for a GGUF file. JSON-schema requests constrain decoding with llama.cpp's grammar."""

    def __init__(self, path: Path, *, model: str, n_parallel: int = 4, n_ctx: int = 4096) -> None:
        if n_parallel < 1:
            raise ConfigurationError("n_parallel must be >= 1")
        _check_gguf(path)
        self.path = path
        self.model = model
        self.n_parallel = n_parallel
        self.n_ctx = n_ctx
        self._server: Any = None

    @property
    def server(self) -> Any:
        if self._server is None:
            self._server = _load_server(self.path, self.n_parallel, self.n_ctx)
        return self._server

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion:
        request: dict[str, Any] = {
            "messages": messages,
            "max_tokens": int(max_tokens or 256),
            "temperature": 0.0 if temperature is None else float(temperature),
        }
        if json_schema is not None:
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": json_schema},
            }
        request["seed"] = request_seed(request)  # llama.cpp's default seed is random: same request, same sample
        try:
            out = self.server.handle_chat_completions(request)
        except Exception as e:
            raise LMCallError(f"local model call failed: {e}", retryable=False) from e
        if not isinstance(out, dict) or "choices" not in out:
            message = out.get("error", {}).get("message") if isinstance(out, dict) else out
            raise LMCallError(f"local model returned an error: {message}")
        usage = out.get("usage") or {}
        text = out["choices"][0]["message"].get("content") or ""
        return Completion(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            cost_usd=0.0,
            model=self.model,
        )
