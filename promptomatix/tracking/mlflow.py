"""Log a finished session to MLflow and register its chosen prompt in MLflow's prompt registry.

It reads the session (not live run state), so it works the same for a local run, a Ray job whose session came
back to the driver, or an old session logged after the fact. Logged: params (the run config, secrets already
removed by the store), metrics per candidate and per round, the final scores and usage, the prompts, candidates
and data rows as artifacts; tagged with the session id, status and verdict. A completed run's prompt becomes a new
version of a registered prompt, tagged with the session id and its scores.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any

from promptomatix.errors import ConfigurationError
from promptomatix.sessions import SessionStore

MLFLOW_HINT = 'pip install "promptomatix[mlflow]"'
DEFAULT_EXPERIMENT = "promptomatix"
_PARAM_MAX = 6000
_NAME_MAX = 60  # a registered prompt's name, kept short enough to read in MLflow's UI


@dataclass
class TrackedRun:
    run_id: str
    experiment_id: str
    prompt_name: str | None = None
    prompt_version: int | None = None


#: MLflow's HTTP defaults (7 retries with backoff, 120 s a request) kept a finished run waiting 4 minutes for a
#: server that is down; these apply unless the user set them
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


def import_mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise ConfigurationError("tracking in MLflow needs mlflow", hint=MLFLOW_HINT) from None
    for name, default in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, default)
    return mlflow


def probe(uri: str | None) -> None:
    """One cheap request to the store: raises what MLflow raises for an unsupported URI or an unreachable server."""
    mlflow = import_mlflow()
    mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments(max_results=1)


def prompt_name_for(text: str) -> str:
    """A registry-safe prompt name (letters, digits, `-`, `_`, `.`) from a job name or a task description.

    A name past `_NAME_MAX` keeps its matrix suffix (`-seed-1`) and gains a hash of the whole text: cutting the end
    off gave two jobs of one matrix the same registered prompt, each one's prompt a "new version" of the other's."""
    slug = _slug(text)
    if len(slug) <= _NAME_MAX:
        return slug or "promptomatix-prompt"
    digest = hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:8]
    base, _, matrix = text.partition("[")
    tail = _slug(_slug(matrix)[-(_NAME_MAX // 2) :])
    head = _slug(_slug(base)[: _NAME_MAX - len(digest) - len(tail) - 2])
    return "-".join(part for part in (head, digest, tail) if part)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text.strip()).strip("-.")


def log_session(
    store: SessionStore,
    session_id: str,
    *,
    uri: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
    prompt_name: str | None = None,
) -> TrackedRun:
    """Log one session as an MLflow run (status FINISHED or FAILED); register the prompt of a completed one."""
    mlflow = import_mlflow()
    from mlflow.entities import Metric, Param, RunTag

    session = store.load(session_id)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp is not None else client.create_experiment(experiment)
    version = session.latest_version() if session.status == "completed" else None
    tags = _tags(session, version, run_name)
    run = client.create_run(exp_id, run_name=run_name or session_id, tags=tags)
    rid = run.info.run_id
    try:
        params = [Param(k, v) for k, v in _params(session.run_config).items()]
        metrics = [Metric(k, v, 0, step) for k, v, step in _metrics(version)]
        client.log_batch(rid, metrics=metrics, params=params, tags=[RunTag("mlflow.note.content", session.description)])
        _artifacts(client, rid, session, version)
        tracked = TrackedRun(run_id=rid, experiment_id=exp_id)
        if version is not None:
            name = prompt_name or prompt_name_for(run_name or session.description or session_id)
            registered = client.register_prompt(
                name=name,
                template=version.prompt,
                commit_message=f"promptomatix session {session_id} version {version.version}",
                tags={k: v for k, v in tags.items() if not k.startswith("mlflow.")} | {"mlflow_run_id": rid},
            )
            tracked.prompt_name, tracked.prompt_version = name, int(registered.version)
            client.set_tag(rid, "promptomatix.prompt", f"prompts:/{name}/{registered.version}")
    except Exception:
        client.set_terminated(rid, status="FAILED")
        raise
    client.set_terminated(rid, status="FINISHED" if session.status == "completed" else "FAILED")
    return tracked


def _tags(session: Any, version: Any, run_name: str | None) -> dict[str, str]:
    from promptomatix.batch.summary import _verdict

    tags = {"session_id": session.session_id, "status": session.status, "promptomatix.source": "promptomatix"}
    if run_name:
        tags["job"] = run_name
    if version is not None:
        initial = version.initial_test.mean if version.initial_test else None
        best = version.test.mean if version.test else None
        verdict = _verdict(version, initial, best)
        for key, value in (("initial_test", initial), ("optimized_test", best), ("verdict", verdict),
                           ("optimized_valid", version.valid.penalized if version.valid else None),
                           ("backend", version.backend), ("version", version.version)):  # fmt: skip
            if value is not None:
                tags[key] = f"{value:.4f}" if isinstance(value, float) else str(value)
    failure = next((e for e in reversed(session.events) if e.get("kind") in ("failed", "interrupted")), None)
    if failure and session.status != "completed":
        tags["error"] = str(failure.get("reason") or failure.get("message") or failure.get("kind"))[:500]
    return tags


def _params(config: dict[str, Any]) -> dict[str, str]:
    out = {}
    for k, v in sorted(config.items()):
        if v is None or v == [] or v == {}:
            continue
        text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
        out[k] = text[:_PARAM_MAX]
    return out


def _metrics(version: Any) -> list[tuple[str, float, int]]:
    """Final scores and usage; per candidate (step = candidate id) and per round (best valid so far)."""
    if version is None:
        return []
    out: list[tuple[str, float, int]] = []
    finals = {
        "initial_valid": version.initial_valid.penalized if version.initial_valid else None,
        "optimized_valid": version.valid.penalized if version.valid else None,
        "initial_test": version.initial_test.mean if version.initial_test else None,
        "optimized_test": version.test.mean if version.test else None,
        "optimized_test_ci_low": version.test.ci_low if version.test else None,
        "optimized_test_ci_high": version.test.ci_high if version.test else None,
        "calls": version.usage.calls,
        "cached_calls": version.usage.cached_calls,
        "cost_usd": version.usage.cost_usd,
        "seconds": version.usage.seconds,
    }
    out += [(k, float(v), 0) for k, v in finals.items() if v is not None]
    best: dict[int, float] = {}
    for c in sorted(version.candidates, key=lambda c: c.get("id", 0)):
        step = int(c.get("id", 0))
        for field in ("minibatch_score", "valid_raw", "valid_penalized", "confirm_score"):
            if c.get(field) is not None:
                out.append((f"candidate_{field}", float(c[field]), step))
        if c.get("valid_penalized") is not None:
            r = int(c.get("round", 0))
            best[r] = max(best.get(r, float("-inf")), float(c["valid_penalized"]))
    running = float("-inf")
    for r in sorted(best):
        running = max(running, best[r])
        out.append(("round_best_valid", running, r))
    return out


def _artifacts(client: Any, rid: str, session: Any, version: Any) -> None:
    """Prompts, candidates, the paired verdict, the per-row held-out results, the task spec and the data rows."""
    if version is not None:
        client.log_text(rid, version.prompt, "prompts/optimized_prompt.txt")
        if version.instructions:
            client.log_text(rid, version.instructions, "prompts/optimized_instructions.txt")
        client.log_text(rid, _jsonl(version.candidates), "candidates.jsonl")
        if getattr(version, "test_examples", None):
            client.log_text(rid, _jsonl(version.test_examples), "examples/test_examples.jsonl")
        if getattr(version, "verdict", None):
            client.log_text(rid, json.dumps(version.verdict, indent=2, ensure_ascii=False), "verdict.json")
    if session.task_spec:
        client.log_text(rid, json.dumps(session.task_spec, indent=2, ensure_ascii=False), "task_spec.json")
        if session.task_spec.get("initial_prompt"):
            client.log_text(rid, session.task_spec["initial_prompt"], "prompts/initial_prompt.txt")
    for split in ("train", "valid", "test"):
        rows = (session.data or {}).get(split)
        if isinstance(rows, list) and rows:
            client.log_text(rid, _jsonl(rows), f"data/{split}.jsonl")


def _jsonl(rows: list[Any]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)
