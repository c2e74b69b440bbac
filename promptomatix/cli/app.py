"""The `promptomatix` command. Thin: parses flags, calls the library, renders with rich.

Imports of DSPy, litellm and the pipeline happen inside commands, so `promptomatix --help` stays fast.
One error boundary (main) turns our typed errors into one clean line; PROMPTOMATIX_DEBUG=1 shows the traceback.
"""

from __future__ import annotations

import os
import sys

from promptomatix.launch import INTERRUPTED_EXIT, quiet_ctrl_c

#: True when this process is the `promptomatix` command (not a test or a library importing the app).
LAUNCHED = os.path.basename(sys.argv[0]) in ("promptomatix", "promptomatix.exe", "__main__.py")
#: A closed pipe (`promptomatix … | head`): 128 + SIGPIPE, what the shell reports for `git log | head` or `yes | head`.
BROKEN_PIPE_EXIT = 141

if LAUNCHED:  # the console script (promptomatix.launch) did it already; scripts calling this main() did not
    quiet_ctrl_c()

import contextlib  # noqa: E402  (after the handler: Ctrl-C during these imports must exit 130 too)
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import typer  # noqa: E402

from promptomatix import __version__  # noqa: E402
from promptomatix.errors import PluginError, PromptomatixError, RunInterrupted  # noqa: E402

app = typer.Typer(
    name="promptomatix",
    help="Prompt optimization on DSPy: describe a task in one sentence, get a measured, better prompt.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # plain help at the top level: rich's help renderer alone costs ~0.25 s to import, and `promptomatix --help`
    # must answer in under 0.5 s; each command's own --help keeps the rich layout
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"promptomatix {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Prompt optimization on DSPy."""


def _register() -> None:
    """Every command comes through the `register_commands` hook: the built-ins' first, then each plugin's.

    A built-in that fails to import is a bug and fails loudly. A plugin that fails to load or to register is not
    silently dropped either: one warning line names it (and `promptomatix plugins` shows the error). A plugin's
    commands are added through `add_plugin_commands`, which refuses a name already taken.
    """
    import logging

    from promptomatix.plugins.commands import add_plugin_commands, command_names, startup_line
    from promptomatix.plugins.manager import (
        BUILTINS,
        LOAD_ENV,
        failed_plugins,
        hook_impls,
        load_warnings,
        note_registration,
        plugin_manager,
    )

    manager_log = logging.getLogger("promptomatix.plugins.manager")
    level = manager_log.level
    manager_log.setLevel(logging.ERROR)  # its load warnings are printed below, once each, with the fix
    try:
        with contextlib.redirect_stdout(sys.stderr):  # a plugin printing at import must not break `--json`
            plugin_manager()
    finally:
        manager_log.setLevel(level)
    for impl in hook_impls("register_commands"):  # the built-ins' first, whatever a plugin's trylast says
        if impl.plugin_name == BUILTINS:
            impl.function(cli=app)
            for name in command_names(app):
                note_registration(BUILTINS, "commands", name)
            continue
        for name in add_plugin_commands(app, impl.plugin_name, impl.function, _warn):
            note_registration(impl.plugin_name, "commands", name)
            PLUGIN_COMMANDS.setdefault(name, impl.plugin_name)
    for warning in load_warnings():
        _warn(warning)
    for info in failed_plugins():
        _warn(f"plugin {info.name} failed to load: {startup_line(info.error)} (fix or uninstall it, or leave it out "
              f"with {LOAD_ENV}=<the plugins to load>)")  # fmt: skip


#: Each plugin command's name and its plugin: a command that crashes is reported naming them (`_plugin_failure`).
PLUGIN_COMMANDS: dict[str, str] = {}


def _warn(message: str) -> None:
    sys.stderr.write(f"Warning: {message}\n")


_register()


def _quiet_third_party() -> None:
    """DSPy's INFO logs and tqdm bars would tear through our progress display; the CLI owns the terminal.

    Done here, in the CLI process, never in the library. PROMPTOMATIX_VERBOSE=1 keeps them.
    """
    from promptomatix.cli.render import verbose

    if verbose():
        return
    import logging

    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # mlflow sets its logger on import, after this runs
    for name in ("dspy", "LiteLLM", "litellm", "httpx", "optuna", "mlflow", "alembic"):  # MLflow's INFO lines
        logging.getLogger(name).setLevel(logging.WARNING)  # ("Creating initial MLflow database tables...")


def quiet_dspy_if_loaded() -> None:
    """DSPy sets its logger to INFO when it is imported, which the CLI leaves to the run (it is lazy), so the
    level set above does not hold: the run's progress events call this, and once DSPy is loaded its log is cut to
    nothing (its trial-by-trial INFO, the warnings about its own proposer's fields, and an ERROR line per example
    a metric failed on, quoting the data rows, tear through the progress display; what fails a run reaches the
    user as our one error line). PROMPTOMATIX_VERBOSE=1 keeps them."""
    from promptomatix.cli.render import verbose

    if verbose() or "dspy" not in sys.modules:
        return
    import logging

    logger = logging.getLogger("dspy")
    if logger.level <= logging.ERROR:
        logger.setLevel(logging.CRITICAL)


#: The signals that stop a run as Ctrl-C does (`run.recorder` ignores them all while the best-so-far is saved).
_STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)
#: A stop signal this soon after the one that stopped the run is the same stop (Ctrl-C then `docker stop`, two
#: SIGTERMs): ignored while the first one unwinds and saves. Raised again, it broke the unwinding (a lock left
#: half-released: "unexpected error: RuntimeError", the best-so-far lost). A later one interrupts again.
STOP_GRACE_S = 3.0
_last_stop: list[float] = []


def _stop_as_interrupt(signum: int, frame: object) -> None:
    """Ctrl-C, SIGTERM and SIGHUP end a run alike: best so far saved, session `interrupted`, exit 130 (SIGTERM and
    SIGHUP killed it at once, leaving it `running` with no version)."""
    now = time.monotonic()
    if _last_stop and now - _last_stop[0] < STOP_GRACE_S:
        return
    _last_stop[:] = [now]
    raise KeyboardInterrupt


def _exit_interrupted(message: str) -> None:
    """Exit 130 with one line. A provider call still hanging in a worker thread must not hold the exit (Python
    joins worker threads at exit): the session is saved already, so the CLI process leaves at once."""
    from promptomatix.cli.render import error_line

    if threading.current_thread() is threading.main_thread():  # the session is saved: a second Ctrl-C (or SIGTERM,
        for stop in _STOP_SIGNALS:  # SIGHUP) while the line prints must not end in a traceback and exit -2
            signal.signal(stop, signal.SIG_IGN)
    error_line(message)
    if LAUNCHED and any(
        t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.current_thread()
    ):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(INTERRUPTED_EXIT)
    sys.exit(INTERRUPTED_EXIT)


def _plugin_failure(e: Exception, argv: list[str] | None) -> str | None:
    """The one line for a plugin's command that raised, naming the plugin, the command and the fix (it read
    "unexpected error", as if Promptomatix had failed); None when the command is not a plugin's."""
    args = sys.argv[1:] if argv is None else argv
    command = next((a for a in args if not a.startswith("-")), None)
    plugin = PLUGIN_COMMANDS.get(command or "")
    if plugin is None:
        return None
    from promptomatix.plugins.manager import fix_hint
    from promptomatix.run_guard import one_line

    cause = one_line(f"{type(e).__name__}: {e}")
    return str(PluginError(f"plugin {plugin}: command '{command}' failed: {cause}", hint=fix_hint(plugin)))


def _encode_safely() -> None:
    """On a stdout/stderr that is not UTF-8 (Windows redirected: cp1252), a character its codec lacks is written
    as `\\u2192`, not raised: the report of a run that succeeded crashed on "→" and exited 1."""
    from promptomatix.cli.render import is_utf8

    for stream in (sys.stdout, sys.stderr):
        if stream is not None and not is_utf8(stream) and hasattr(stream, "reconfigure"):
            with contextlib.suppress(AttributeError, OSError, ValueError):
                stream.reconfigure(errors="backslashreplace")


def _is_broken_pipe(e: BaseException | None) -> bool:
    import errno

    return isinstance(e, OSError) and e.errno == errno.EPIPE


def _exit_broken_pipe() -> None:
    """The reader left (`| head`): exit 141 quietly, as a program killed by SIGPIPE would. Typer made it a silent
    exit 1, a failure, after a run that had completed and been saved. stdout goes to devnull (the recipe of Python's
    signal docs), so the flush at interpreter exit does not fail again with "Exception ignored … BrokenPipeError"."""
    if LAUNCHED:  # never move the descriptors of a test process calling main()
        with contextlib.suppress(AttributeError, OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
    sys.exit(BROKEN_PIPE_EXIT)


def main(argv: list[str] | None = None) -> None:
    """Entry point: streams that cannot fail on encoding, a quiet exit when the pipe closes, then the commands."""
    _encode_safely()
    try:
        _main(argv)
    except BrokenPipeError:
        _exit_broken_pipe()
    except SystemExit as e:  # typer turns EPIPE into a silent sys.exit(1)
        if e.code not in (0, None) and _is_broken_pipe(e.__context__):
            _exit_broken_pipe()
        if e.code in (0, None):
            _flush_stdout()
        raise
    _flush_stdout()


def _flush_stdout() -> None:
    """What is still buffered fails here, where it exits 141, not in the interpreter's exit (a traceback, exit 120)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _exit_broken_pipe()


def _refuse_options_without_command(args: list[str]) -> None:
    """Upstream ran as `python -m promptomatix.main --raw_input "…" …`: the same flags before any command end with
    the command to use, not click's bare "No such option: --raw_input"."""
    first = args[0].split("=", 1)[0] if args else ""
    if first.startswith("--") and first not in ("--help", "--version"):
        from promptomatix.errors import UsageError

        raise UsageError(f'{first} needs a command before it: upstream\'s `--raw_input "…"` is `promptomatix '
                         'optimize "…"` here', hint="the other flags follow the command; see promptomatix optimize "
                         "--help")  # fmt: skip


def _main(argv: list[str] | None) -> None:
    """The single error boundary."""
    if threading.current_thread() is threading.main_thread():
        for stop in _STOP_SIGNALS:  # from here on, Ctrl-C is KeyboardInterrupt; so are SIGTERM (`timeout`, docker
            signal.signal(stop, _stop_as_interrupt)  # stop) and SIGHUP (a closed terminal)
    debug = os.environ.get("PROMPTOMATIX_DEBUG") == "1"
    try:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        from promptomatix.logsetup import show_warnings

        show_warnings()  # the CLI shows the library's WARNINGs on stderr, as it always did
        _refuse_options_without_command(sys.argv[1:] if argv is None else argv)
        _quiet_third_party()
        code = app(args=argv, standalone_mode=False)
    except RunInterrupted as e:
        if debug:
            raise
        _exit_interrupted(str(e))
    except PromptomatixError as e:
        if debug:
            raise
        from promptomatix.cli.render import error_line

        error_line(str(e))
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        if debug:
            raise
        _exit_interrupted("interrupted")
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort as e:  # click's prompts turn Ctrl-C into a silent Abort too: it is an interrupt, 130
        if isinstance(e.__context__, KeyboardInterrupt) and not debug:
            _exit_interrupted("interrupted")
        sys.exit(1)
    except Exception as e:  # click usage errors (typer vendors click) carry their own exit code, 2
        if hasattr(e, "show") and isinstance(getattr(e, "exit_code", None), int):
            e.show()
            sys.exit(e.exit_code)
        if debug:
            raise
        from promptomatix.cli.render import error_line

        error_line(_plugin_failure(e, argv) or f"unexpected error: {type(e).__name__}: {e} (set "
                   "PROMPTOMATIX_DEBUG=1 for the traceback)")  # fmt: skip
        sys.exit(1)
    # Under standalone_mode=False, typer turns Ctrl-C into exit code 130 and typer.Exit(n) into n, *returned*.
    if code == INTERRUPTED_EXIT:
        _exit_interrupted("interrupted")
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
