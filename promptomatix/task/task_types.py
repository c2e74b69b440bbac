"""The closed set of task types. Metrics, spec inference and the CLI all key on these names."""

from __future__ import annotations

from enum import Enum


class TaskType(str, Enum):
    CLASSIFICATION = "classification"
    MULTI_LABEL_CLASSIFICATION = "multi_label_classification"
    QA = "qa"
    REASONING = "reasoning"
    SUMMARIZATION = "summarization"
    TRANSLATION = "translation"
    GENERATION = "generation"
    INFORMATION_EXTRACTION = "information_extraction"
    PARAPHRASING = "paraphrasing"
    CONVERSATION = "conversation"
    NEGOTIATION = "negotiation"
    CODE_GENERATION = "code_generation"
    CODE_EXPLANATION = "code_explanation"
    CODE_COMPLETION = "code_completion"
    CODE_DEBUGGING = "code_debugging"
    PLANNING = "planning"
    TOOL_USE = "tool_use"
    DECISION_MAKING = "decision_making"
    PROCESS_AUTOMATION = "process_automation"
    RECOMMENDATION = "recommendation"
    DATA_ANALYSIS = "data_analysis"


#: Spellings users (and upstream, and small models) use for the same type.
ALIASES: dict[str, str] = {
    "math": "reasoning",
    "math_reasoning": "reasoning",
    "arithmetic": "reasoning",
    "question_answering": "qa",
    "question-answering": "qa",
    "multi_label": "multi_label_classification",
    "multilabel": "multi_label_classification",
    "multi-label classification": "multi_label_classification",
    "extraction": "information_extraction",
    "summarisation": "summarization",
    "summary": "summarization",
    "chat": "conversation",
    "code": "code_generation",
    "text_generation": "generation",
}

#: Types scored by reference-free judgement (plus reference overlap when a reference exists).
OPEN_ENDED = frozenset(
    {
        TaskType.GENERATION,
        TaskType.PARAPHRASING,
        TaskType.CONVERSATION,
        TaskType.NEGOTIATION,
        TaskType.CODE_GENERATION,
        TaskType.CODE_EXPLANATION,
        TaskType.CODE_COMPLETION,
        TaskType.CODE_DEBUGGING,
        TaskType.PLANNING,
        TaskType.TOOL_USE,
        TaskType.DECISION_MAKING,
        TaskType.PROCESS_AUTOMATION,
        TaskType.RECOMMENDATION,
        TaskType.DATA_ANALYSIS,
    }
)


def normalize_task_type_name(name: str) -> str:
    """Lower-case, underscore and resolve aliases; does not validate (custom types are allowed)."""
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    return ALIASES.get(key, ALIASES.get(name.strip().lower(), key))


def known_task_types() -> list[str]:
    return [t.value for t in TaskType]
