"""Scripted fake models for the CLI: a test hook, deliberately not shown in `--help`.

When the environment variable PROMPTOMATIX_FAKE_LM is set, every command that calls models (optimize, refine,
resume, feedback generate) uses FakeLMs instead of real models. Its value is a path to a JSON script:

    {"task":    {"rules": [[["complains", "awful"], {"label": "negative"}]], "default": {"label": "positive"}},
     "teacher": {"rules": [["{\\"prompt\\"", {"prompt": "Say negative if the review complains."}]], "default": {}}}

Each role ("task", "teacher", optionally "judge") answers with the first rule whose needle occurs in the prompt
(all messages joined); a needle is a string or a list of strings that must all occur. Otherwise it answers
`default`. Answers that are not strings are sent as JSON. Every fake answer is free and instant, so CLI tests and
offline demos of the command line run without any model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from promptomatix.errors import ConfigurationError

ENV_VAR = "PROMPTOMATIX_FAKE_LM"


def _responder(spec: dict[str, Any]) -> Any:
    rules = [(n if isinstance(n, list) else [n], a) for n, a in spec.get("rules", [])]
    default = spec.get("default")

    def answer(messages: list[dict[str, str]]) -> str:
        text = "\n".join(str(m.get("content", "")) for m in messages)
        for needles, out in rules:
            if all(str(n) in text for n in needles):
                return out if isinstance(out, str) else json.dumps(out)
        if default is None:
            raise ConfigurationError(f"fake model script has no answer for a prompt starting {text[:60]!r}")
        return default if isinstance(default, str) else json.dumps(default)

    return answer


def clients_from_script(script: dict[str, Any]) -> dict[str, Any]:
    """FakeLM clients by role from a script dict (see the module docstring)."""
    from promptomatix.lm.fake import FakeLM

    if not isinstance(script, dict) or "task" not in script:
        raise ConfigurationError("a fake model script needs at least a 'task' role")
    unknown = set(script) - {"task", "teacher", "judge"}
    if unknown:
        raise ConfigurationError(f"unknown roles in the fake model script: {', '.join(sorted(unknown))}")
    return {role: FakeLM(default=_responder(spec), model=f"fake/{role}") for role, spec in script.items()}


def clients_from_env() -> dict[str, Any] | None:
    """The scripted clients when PROMPTOMATIX_FAKE_LM is set, else None (use the configured models)."""
    path = os.environ.get(ENV_VAR)
    if not path:
        return None
    try:
        script = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigurationError(f"cannot read the fake model script {path} ({e})", hint=f"unset {ENV_VAR}") from None
    return clients_from_script(script)
