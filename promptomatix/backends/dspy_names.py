"""Field names the dspy backend cannot carry, checked without importing DSPy (a dry run and the checks before a
session is created stay cheap).

A task field becomes a DSPy signature field (a pydantic model field), a `dspy.Example(**row)` keyword and a keyword
of `Predict(**inputs)`: a name DSPy uses itself there crashed the run (`self`: TypeError in `Example.__init__`) or
was refused only in the search stage, after the spec and the synthetic data were paid for.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Keywords `Predict.__call__`/`forward` take for itself, or names a `Signature` class already has.
DSPY_RESERVED_NAMES = frozenset({
    "self", "signature", "instructions", "demos", "config", "lm", "prediction", "fields", "input_fields",
    "output_fields", "model_config", "model_fields", "model_computed_fields", "model_extra", "model_fields_set",
    "model_construct", "model_copy", "model_dump", "model_dump_json", "model_json_schema", "model_parametrized_name",
    "model_post_init", "model_rebuild", "model_validate", "model_validate_json", "model_validate_strings",
})  # fmt: skip


def dspy_unusable_names(names: Iterable[str]) -> list[str]:
    """The names DSPy would crash on or refuse (pydantic also refuses a leading underscore), in order, once."""
    return [n for n in dict.fromkeys(names) if n in DSPY_RESERVED_NAMES or n.startswith("_")]


def dspy_names_hint(bad: list[str]) -> str:
    """The fixes a user can apply today: rename the column in the file, or a backend that takes any name."""
    first = bad[0]
    return (f"rename the column in the data file (e.g. {first!r} to '{first.lstrip('_')}_text'), or pass "
            "--backend meta, which takes any column name")  # fmt: skip
