"""An example Promptomatix plugin: every customization point through its hook, nothing edited in Promptomatix.

Loaded through the `promptomatix` entry point in pyproject.toml. Module level stays cheap: the CLI imports every
plugin at startup, `--help` included, so the backend (which needs pydantic for its settings) lives in
`suffix_search.py` and is imported only when its registry is built; it imports Promptomatix's backend types only
when it runs.
"""

from __future__ import annotations

import json
import os
from typing import Any

from promptomatix.plugins import hookimpl

# -- a task type and its metrics --------------------------------------------------------------------------------


def _answer(pred: Any) -> str:
    value = pred.get("answer") if isinstance(pred, dict) else getattr(pred, "answer", pred)
    return str(value or "").strip().strip(".!").lower()


def yes_no_score(example: Any, pred: Any) -> tuple[float, str]:
    """Training metric: 1 for exactly the right word, 0.5 for the right polarity in other words ("Yep"), else 0."""
    gold, got = _answer(example), _answer(pred)
    if got == gold:
        return 1.0, "exact"
    if got[:1] == gold[:1] and got[:1] in ("y", "n"):
        return 0.5, f"right answer, but say exactly {gold!r}, not {got!r}"
    return 0.0, f"expected {gold!r}, got {got!r}"


def strict_yes_no(example: Any, pred: Any) -> bool:
    """Final (held-out) metric: the answer must be exactly yes or no, as a downstream parser reads it."""
    return _answer(pred) == _answer(example)


@hookimpl
def register_task_types(register: Any) -> None:
    from promptomatix.task import TaskTypeDef

    register(
        TaskTypeDef(
            name="yesno",
            aliases=("yes-no", "yes_no_question"),
            inputs=("question",),
            output="answer",
            metric=yes_no_score,
            keywords=("yes or no",),
            description="a question answered yes or no",
        )
    )


@hookimpl
def register_metrics(register: Any) -> None:
    register("yesno", strict_yes_no, final=True)


# -- a backend --------------------------------------------------------------------------------------------------


@hookimpl
def register_backends(register: Any) -> None:
    from promptomatix.backends.registry import BackendEntry
    from promptomatix_example_plugin.suffix_search import SuffixSearch, SuffixSettings

    register(
        BackendEntry(
            name="suffix_search",
            settings_model=SuffixSettings,
            build=lambda settings, cfg: SuffixSearch(settings),
            description="the initial prompt plus each of a few suffixes; the best on valid wins",
        )
    )


# -- a model client ---------------------------------------------------------------------------------------------


class RulesClient:
    """`example/...`: answers a yes/no question without a model: yes when it mentions blue. It says "Yep"/"Nope"
    unless the prompt asks for exactly yes or no. Free and instant."""

    def __init__(self, model: str) -> None:
        self.model = model

    def complete(self, messages: list[dict[str, str]], *, json_schema: Any = None, max_tokens: Any = None,
                 temperature: Any = None) -> Any:  # fmt: skip
        from promptomatix.lm.types import Completion

        system = " ".join(m["content"] for m in messages if m["role"] == "system")
        question = messages[-1]["content"]
        exact = "exactly yes or no" in system
        word = ("yes" if exact else "Yep") if "blue" in question else ("no" if exact else "Nope")
        fields = list((json_schema or {}).get("properties", {})) or ["answer"]
        text = json.dumps({f: word for f in fields}) if json_schema else word
        return Completion(text=text, prompt_tokens=len(question.split()), completion_tokens=1, model=self.model)


@hookimpl
def register_models(register: Any) -> None:
    from promptomatix.lm.providers import ModelProvider

    register(
        ModelProvider(
            name="example",
            prefixes=("example/",),
            factory=lambda model, options: RulesClient(model),
            models=("example/rules",),
            description="rule-based yes/no answers, no model needed",
        )
    )


# -- a meta-prompt ----------------------------------------------------------------------------------------------

CHECKLIST = """EXAMPLE-CHECKLIST. Improve this prompt for the task "$task".
Current prompt:
$current_prompt
It scored $score. Failures:
$failures
Rewrite it as a short checklist the model follows. Reply as JSON {"prompt": "..."}."""


@hookimpl
def register_meta_prompts(register: Any) -> None:
    register("example_checklist", CHECKLIST, pinned=True)


# -- a CLI command ----------------------------------------------------------------------------------------------


@hookimpl
def register_commands(cli: Any) -> None:
    import typer

    @cli.command("example-hello", help="Say hello from the example plugin.")
    def example_hello(name: str = typer.Option("world", "--name")) -> None:
        typer.echo(f"Hello {name}, from the example plugin.")


# -- run events -------------------------------------------------------------------------------------------------


@hookimpl
def on_run_event(event: Any) -> None:
    """Append each event as a JSON line to $EXAMPLE_PLUGIN_EVENTS (a webhook would POST it instead)."""
    path = os.environ.get("EXAMPLE_PLUGIN_EVENTS")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(event.model_dump_json() + "\n")
