"""The `promptomatix` command. Thin: parses flags, calls the library, renders with rich.

Imports of DSPy, litellm and the pipeline happen inside commands, so `promptomatix --help` stays fast.
One error boundary (main) turns our typed errors into one clean line; PROMPTOMATIX_DEBUG=1 shows the traceback.
"""

from __future__ import annotations

import os
import sys

import typer

from promptomatix import __version__
from promptomatix.errors import PromptomatixError

app = typer.Typer(
    name="promptomatix",
    help="Prompt optimization on DSPy: describe a task in one sentence, get a measured, better prompt.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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
    from promptomatix.cli import models_cmd

    app.add_typer(models_cmd.app, name="models")
    for module in ("optimize_cmd", "sessions_cmd"):
        try:
            mod = __import__(f"promptomatix.cli.{module}", fromlist=["register"])
        except ModuleNotFoundError:
            continue
        mod.register(app)


_register()


def _quiet_third_party() -> None:
    """DSPy's INFO logs and tqdm bars would tear through our progress display; the CLI owns the terminal.

    Done here, in the CLI process, never in the library. PROMPTOMATIX_VERBOSE=1 keeps them.
    """
    if os.environ.get("PROMPTOMATIX_VERBOSE") == "1":
        return
    import logging

    os.environ.setdefault("TQDM_DISABLE", "1")
    for name in ("dspy", "LiteLLM", "litellm", "httpx", "optuna"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> None:
    """Entry point with the single error boundary."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    _quiet_third_party()
    try:
        app(args=argv, standalone_mode=False)
    except PromptomatixError as e:
        if os.environ.get("PROMPTOMATIX_DEBUG") == "1":
            raise
        from promptomatix.cli.render import error_line

        error_line(str(e))
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        if os.environ.get("PROMPTOMATIX_DEBUG") == "1":
            raise
        from promptomatix.cli.render import error_line

        error_line("interrupted")
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as e:  # click usage errors (typer vendors click) carry their own exit code, 2
        if hasattr(e, "show") and isinstance(getattr(e, "exit_code", None), int):
            e.show()
            sys.exit(e.exit_code)
        if os.environ.get("PROMPTOMATIX_DEBUG") == "1":
            raise
        from promptomatix.cli.render import error_line

        error_line(f"unexpected error: {type(e).__name__}: {e} (set PROMPTOMATIX_DEBUG=1 for the traceback)")
        sys.exit(1)


if __name__ == "__main__":
    main()
