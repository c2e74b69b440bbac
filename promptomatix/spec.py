"""Deprecated alias of `promptomatix.task` (renamed: `spec/` read as a test folder). Removed in the next release.

`import promptomatix.spec` and `from promptomatix.spec.models import TaskSpec` keep working: the submodules are the
same module objects as under `promptomatix.task`, so classes compare equal.
"""

from __future__ import annotations

import sys

from promptomatix.task import *  # noqa: F403
from promptomatix.task import (
    __all__,  # noqa: F401
    answers,
    heuristics,
    infer,
    models,
    overrides,
    parsing,
    task_types,
)

for _module in (answers, heuristics, infer, models, overrides, parsing, task_types):
    sys.modules[f"{__name__}.{_module.__name__.rpartition('.')[2]}"] = _module
del _module
