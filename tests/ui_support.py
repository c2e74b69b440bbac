"""Shared by the UI tests: a real session made by a real run with scripted fake models, and bounded waits."""

from __future__ import annotations

import time
from typing import Any

from promptomatix.cli.fakes import clients_from_script
from promptomatix.config import RunConfig
from promptomatix.pipeline import Run
from promptomatix.sessions import SessionStore

GOOD_PROMPT = "Say negative if the review complains or criticizes, otherwise say positive."
GENERATED = "Say what to do with sarcastic reviews."
SCRIPT: dict[str, Any] = {
    "task": {"rules": [[["complains", "awful"], {"label": "negative"}]], "default": {"label": "positive"}},
    "teacher": {
        "rules": [
            ['{"feedback"', {"feedback": [{"quote": "", "comment": GENERATED}]}],
            # a refine on the generated feedback rewrites the prompt (one ending with the same prompt adds no version)
            [['{"prompt"', f"- {GENERATED}"], {"prompt": "Negative if it complains or is sarcastic, else positive."}],
            ['{"prompt"', {"prompt": GOOD_PROMPT}],
        ],
        "default": {},
    },
}
TASK = "Classify the sentiment of a movie review"
TOKEN = "test-token-0123456789"


def rows(n: int = 24) -> list[dict[str, str]]:
    return [
        {
            "review": f"{'great wonderful' if i % 2 == 0 else 'awful boring'} film number {i}",
            "label": "positive" if i % 2 == 0 else "negative",
        }
        for i in range(n)
    ]


def fake_clients(latency: float = 0.0) -> dict[str, Any]:
    clients = clients_from_script(SCRIPT)
    for c in clients.values():
        c.latency = latency
    return clients


def make_session(store: SessionStore, *, initial_prompt: str | None = None) -> str:
    """One completed session (spec, data, version 1 with candidates) from a real run on the fake models."""
    data = rows()
    cfg = RunConfig.from_kwargs(
        raw_input=TASK,
        train_data=data[:12],
        valid_data=data[12:18],
        test_data=data[18:],
        input_fields=["review"],
        output_fields=["label"],
        initial_prompt=initial_prompt,
        sessions_dir=str(store.root),
    )
    result = Run(cfg, clients=fake_clients(), store=store).execute()
    return result.session_id


def wait_for(predicate: Any, timeout: float = 30.0, step: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds (never hang)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout} s")
