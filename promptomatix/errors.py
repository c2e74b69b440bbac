"""One exception root, so callers (and the CLI's single error boundary) can catch everything we raise.

Every message is meant to be shown to a user as one line, and names the fix where there is one.
"""

from __future__ import annotations

import re
from typing import Any

#: CLI flags whose Python kwarg is not the flag's own name with underscores (upstream's names, which both accept)
_KWARG_OF_FLAG = {"api-key": "model_api_key", "api-base": "model_api_base", "model": "model_name"}
#: a flag, and its value when that is a number or a backend's name (other values read as words of the sentence)
_FLAG = re.compile(r"--([a-z][a-z0-9]*(?:[-_][a-z0-9]+)*)(?:[ =](\d[\w.]*|(?<=backend[ =])[a-z_]+))?")
_FOLLOW_UP = re.compile(r"`?promptomatix (resume|refine) ([A-Za-z0-9_-]+)((?: --[a-z-]+(?: \d[\w.]*)?)*)`?")
_COMMANDS = (
    (re.compile(r"`?promptomatix sessions list`?"), "`promptomatix.list_sessions()`"),
    (re.compile(r"`?promptomatix optimize \"[^\"]*\"`?"), '`raw_input="Classify ..."`'),
)


def _kwarg(m: re.Match[str]) -> str:
    name = _KWARG_OF_FLAG.get(m.group(1), m.group(1).replace("-", "_"))
    value = m.group(2)
    if value is None:
        return name
    return f"{name}={value}" if value[0].isdigit() else f"{name}={value!r}"


def _follow_up(m: re.Match[str]) -> str:
    """`promptomatix resume ID --max-calls 140` → `promptomatix.resume('ID', max_calls=140)`."""
    function = "resume" if m.group(1) == "resume" else "optimize_with_feedback"
    args = [
        repr(m.group(2)),
        *(_FLAG.sub(_kwarg, f.strip()) for f in re.findall(r" --[a-z-]+(?: \d[\w.]*)?", m.group(3))),
    ]
    return f"`promptomatix.{function}({', '.join(args)})`"


def for_python(hint: str) -> str:
    """The CLI's advice in a hint as a Python caller would follow it: `promptomatix resume ID` becomes
    `promptomatix.resume('ID')`, `--api-key` becomes `model_api_key`, `--max-calls 55` becomes `max_calls=55`."""
    hint = _FOLLOW_UP.sub(_follow_up, hint)
    for pattern, replacement in _COMMANDS:
        hint = pattern.sub(replacement, hint)
    parts = hint.split("`")  # odd parts are quoted; a quoted CLI command with no Python twin keeps its flags
    return "`".join(p if i % 2 and p.startswith("promptomatix ") else _FLAG.sub(_kwarg, p) for i, p in enumerate(parts))


def _line(message: str, hint: str | None) -> str:
    return f"{message} ({hint})" if hint else message


class PromptomatixError(Exception):
    """Root of every error Promptomatix raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(_line(message, hint))

    def for_python(self) -> PromptomatixError:
        """This error with its hint in Python terms (the Python API's boundary calls it; the CLI shows flags)."""
        if self.hint:
            self.hint = for_python(self.hint)
            self.args = (_line(self.message, self.hint),)
        return self


class ConfigurationError(PromptomatixError):
    """A setting, flag or argument is wrong or missing."""


class UsageError(ConfigurationError):
    """The command line was used wrongly (exit code 2, like click)."""

    exit_code = 2


class NoSearchFits(ConfigurationError):
    """The budget left cannot pay for one candidate: refused before the search's first call."""


class ModelUnavailableError(PromptomatixError):
    """The model cannot be reached, found or loaded."""


class LMCallError(PromptomatixError):
    """A model call failed after retries (provider error, bad response)."""

    def __init__(self, message: str, *, hint: str | None = None, retryable: bool = False) -> None:
        super().__init__(message, hint=hint)
        self.retryable = retryable


class BudgetExceeded(PromptomatixError):
    """The run's budget (calls, tokens, USD or seconds) is spent; callers stop and keep the best so far."""

    def __init__(self, message: str, *, limit: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.limit = limit


class DataError(PromptomatixError):
    """User data is malformed: the message names the file, row/line and column."""


class DataUsageError(UsageError, DataError):
    """A data argument of the command line is wrong (a file that does not exist or whose type is not read, a
    column that is not in the file): exit 2 like any wrong command line, and still a DataError for callers that
    catch those."""


class SessionError(PromptomatixError):
    """A session cannot be found, read or written."""


class NotFoundError(SessionError):
    """What was asked for (a session, version, candidate, feedback item, run) does not exist (the UI's 404)."""


class MetricError(PromptomatixError):
    """A metric is unknown or failed to compute."""


class PluginError(ConfigurationError):
    """A plugin failed to load or registered something invalid; the message names the plugin (`plugin` too, when
    it is known)."""

    def __init__(self, message: str, *, hint: str | None = None, plugin: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.plugin = plugin


class OptimizerError(PromptomatixError):
    """The optimizer itself gave up (DSPy raised): the run failed, its baseline stays in the session."""


class StateError(PromptomatixError):
    """A library object was used before it was ready (a bug in the caller or in a plugin, not in user input)."""


class BudgetStop(BaseException):
    """Carries BudgetExceeded through third-party code (DSPy) that turns every Exception into a scored failure.

    Only the DSPy bridge raises it; the dspy backend catches it and stops with the best program so far.
    """

    def __init__(self, exceeded: BudgetExceeded) -> None:
        super().__init__(str(exceeded))
        self.exceeded = exceeded


class RunInterrupted(BaseException):
    """The user pressed Ctrl-C; the best version so far was saved and the run can be resumed (`session_id`).

    Not an Exception, so a caller's `except Exception` around a loop of runs never swallows Ctrl-C and goes on to
    the next run. The Python API raises it as `KeyboardRunInterrupted`, a KeyboardInterrupt too (Python's way to
    say Ctrl-C); a run inside the CLI raises this base, which click does not turn into a bare exit 130 (it does so
    with every KeyboardInterrupt, losing the line that says how to resume). Carries `message`, `hint` and
    `exit_code` (130) like our errors.
    """

    exit_code = 130

    def __init__(self, message: str, *, session_id: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        self.session_id = session_id
        super().__init__(_line(message, hint))

    def __reduce__(self) -> tuple[Any, ...]:
        """Picklable with its session_id: raised in a process pool's worker, it broke the pool (BrokenProcessPool)
        and the id to resume was lost."""
        return (_rebuild_interrupt, (type(self), self.message, self.session_id, self.hint))

    def for_python(self) -> KeyboardRunInterrupted:
        """This interrupt for a Python caller: a KeyboardInterrupt whose hint names `promptomatix.resume('ID')`."""
        hint = f"resume with `promptomatix.resume({self.session_id!r})`" if self.session_id else self.hint
        return KeyboardRunInterrupted(self.message, session_id=self.session_id, hint=hint)


class KeyboardRunInterrupted(RunInterrupted, KeyboardInterrupt):
    """What `process_input`, `resume` and `optimize_with_feedback` raise on Ctrl-C: a RunInterrupted (session_id,
    message, hint) that `except KeyboardInterrupt` catches as well."""

    def for_python(self) -> KeyboardRunInterrupted:
        return self


def _rebuild_interrupt(cls: type[RunInterrupted], message: str, session_id: str, hint: str | None) -> RunInterrupted:
    return cls(message, session_id=session_id, hint=hint)
