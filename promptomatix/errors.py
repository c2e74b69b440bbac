"""One exception root, so callers (and the CLI's single error boundary) can catch everything we raise.

Every message is meant to be shown to a user as one line, and names the fix where there is one.
"""

from __future__ import annotations


class PromptomatixError(Exception):
    """Root of every error Promptomatix raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)


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


class RunInterrupted(PromptomatixError):
    """The user pressed Ctrl-C; the best version so far was saved and the run can be resumed."""

    exit_code = 130

    def __init__(self, message: str, *, session_id: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.session_id = session_id
