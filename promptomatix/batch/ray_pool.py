"""Distributed evaluation: the task model's calls go to a pool of Ray actors, each holding its own model client.

An actor holds one client — a local GGUF replica, or a remote provider client with its own concurrency limit
(`per_actor`) — so a large evaluation fans out over the cluster through the evaluator's threads. Only the raw model
call moves: the run's LM boundary stays in the job's process, so per-example records, the response cache, retries
and the budget are exactly a local run's (a cached call never reaches an actor; every paid call is counted once).

`PoolClient` is a `ModelClient` and pickles (it holds actor handles), so one pool serves every job of a batch.
"""

from __future__ import annotations

import threading
from typing import Any

from promptomatix.errors import LMCallError

CALL_TIMEOUT_S = 600.0


class _ModelActor:
    """A model client in a Ray actor; `max_concurrency` bounds the calls it serves at once."""

    def __init__(self, model: str, settings: dict[str, Any], fake_role: dict[str, Any] | None) -> None:
        if fake_role is not None:
            from promptomatix.batch.worker import fake_clients

            self.client = fake_clients({"task": fake_role})["task"]
        else:
            from promptomatix.lm.factory import create_client

            self.client = create_client(model, **settings)
        self.calls = 0
        self._lock = threading.Lock()

    def complete(self, messages: list[dict[str, str]], kwargs: dict[str, Any]) -> Any:
        with self._lock:
            self.calls += 1
        return self.client.complete(messages, **kwargs)

    def stats(self) -> dict[str, Any]:
        import ray

        return {"calls": self.calls, "node": ray.get_runtime_context().get_node_id()}


class PoolClient:
    """Sends each call to the least busy actor of the pool (counted in this process)."""

    def __init__(self, actors: list[Any], model: str) -> None:
        self.actors = actors
        self.model = model
        self._init_local()

    def _init_local(self) -> None:
        self._busy = [0] * len(self.actors)
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"actors": self.actors, "model": self.model}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.actors, self.model = state["actors"], state["model"]
        self._init_local()

    def complete(self, messages: list[dict[str, str]], **kwargs: Any) -> Any:
        import ray

        with self._lock:
            i = min(range(len(self.actors)), key=self._busy.__getitem__)
            self._busy[i] += 1
        try:
            return ray.get(self.actors[i].complete.remote(messages, kwargs), timeout=CALL_TIMEOUT_S)
        except ray.exceptions.RayTaskError as e:  # the client raised in the actor: raise what it raised
            cause = getattr(e, "cause", None)
            raise (cause if isinstance(cause, BaseException) else LMCallError(str(e).splitlines()[0])) from None
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as e:
            raise LMCallError(f"model actor unavailable: {type(e).__name__}", retryable=True) from None
        finally:
            with self._lock:
                self._busy[i] -= 1

    def stats(self) -> list[dict[str, Any]]:
        import ray

        return ray.get([a.stats.remote() for a in self.actors], timeout=60)


def make_pool(
    model: str,
    n_actors: int,
    *,
    per_actor: int = 4,
    api_key: str | None = None,
    api_base: str | None = None,
    fake_role: dict[str, Any] | None = None,
    actor_cpus: float | None = None,
) -> PoolClient:
    """Start `n_actors` actors serving `model` (Ray must be initialized). A local model takes a CPU per actor."""
    from promptomatix.batch.executors import import_ray
    from promptomatix.lm.factory import is_local

    ray = import_ray()
    cpus = actor_cpus if actor_cpus is not None else (1.0 if fake_role is None and is_local(model) else 0.0)
    settings = {"api_key": api_key, "api_base": api_base, "n_parallel": per_actor}
    actor_cls = ray.remote(num_cpus=cpus, max_concurrency=per_actor)(_ModelActor)
    # SPREAD places replicas on different nodes where it can, so a pool uses the cluster, not one machine.
    actors = [
        actor_cls.options(scheduling_strategy="SPREAD").remote(model, settings, fake_role) for _ in range(n_actors)
    ]
    return PoolClient(actors, model)
