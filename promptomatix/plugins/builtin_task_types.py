"""The built-in task types, registered by promptomatix.plugins.builtins through `register_task_types`.

Registered in the order the teacher sees them listed; `keyword_rank` is the order keyword guessing tries them
("classify customer questions" is classification, not qa).
"""

from __future__ import annotations

from promptomatix.task.task_types import TaskType as T
from promptomatix.task.task_types import TaskTypeDef

_CLASSIFY = ("classify", "classif", "sentiment", "categorize", "categorise", "label ", "spam", "detect whether")
_CODE_EXPLAIN = ("explain code", "explain the code", "explain this code")
_REASON = ("solve", "math", "how many", "calculate", "arithmetic", "word problem")

BUILTIN_TASK_TYPES: tuple[TaskTypeDef, ...] = (
    TaskTypeDef(T.CLASSIFICATION, (), ("text",), "label", "classification", labels="single", keywords=_CLASSIFY,
                keyword_rank=4),
    TaskTypeDef(T.MULTI_LABEL_CLASSIFICATION, ("multi_label", "multilabel", "multi-label classification"),
                ("text",), "labels", "multi_label", labels="multi",
                keywords=("multi-label", "multilabel", "all that apply", "all labels"), keyword_rank=3),
    TaskTypeDef(T.QA, ("question_answering", "question-answering"), ("question",), "answer", "qa",
                keywords=("question", "answer"), keyword_rank=11),
    TaskTypeDef(T.REASONING, ("math", "math_reasoning", "arithmetic"), ("question",), "answer", "reasoning",
                keywords=_REASON, keyword_rank=10),
    TaskTypeDef(T.SUMMARIZATION, ("summarisation", "summary"), ("text",), "summary", "summarization",
                keywords=("summarize", "summarise", "summary", "summarization", "tl;dr"), keyword_rank=2),
    TaskTypeDef(T.TRANSLATION, (), ("text",), "translation", "translation", keywords=("translate", "translation"),
                keyword_rank=1),
    TaskTypeDef(T.GENERATION, ("text_generation",), keyword_rank=99),
    TaskTypeDef(T.INFORMATION_EXTRACTION, ("extraction",), ("text",), "extraction", "extraction",
                keywords=("extract", "named entit", "pull out"), keyword_rank=5),
    TaskTypeDef(T.PARAPHRASING, (), ("text",), "paraphrase", keywords=("paraphrase", "rephrase", "reword"),
                keyword_rank=6),
    TaskTypeDef(T.CONVERSATION, ("chat",), ("message",), "response", keywords=("chat", "conversation", "dialogue"),
                keyword_rank=12),
    TaskTypeDef(T.NEGOTIATION, keyword_rank=99),
    TaskTypeDef(T.CODE_GENERATION, ("code",), ("request",), "code",
                keywords=("python function", "write code", "write a function", "sql query"), keyword_rank=9),
    TaskTypeDef(T.CODE_EXPLANATION, (), ("code",), "explanation", keywords=_CODE_EXPLAIN, keyword_rank=8),
    TaskTypeDef(T.CODE_COMPLETION, (), ("code",), "completion", keyword_rank=99),
    TaskTypeDef(T.CODE_DEBUGGING, (), ("code",), "fixed_code", keywords=("debug", "fix the bug", "fix bugs"),
                keyword_rank=7),
    TaskTypeDef(T.PLANNING, keyword_rank=99),
    TaskTypeDef(T.TOOL_USE, keyword_rank=99),
    TaskTypeDef(T.DECISION_MAKING, keyword_rank=99),
    TaskTypeDef(T.PROCESS_AUTOMATION, keyword_rank=99),
    TaskTypeDef(T.RECOMMENDATION, keyword_rank=99),
    TaskTypeDef(T.DATA_ANALYSIS, keyword_rank=99),
)  # fmt: skip
