"""`promptomatix ui`: serve the local web app and print its URL (with the access token, like Jupyter)."""

from __future__ import annotations

import typer

from promptomatix.cli.render import err_console

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _check_deps() -> None:
    from promptomatix.errors import ConfigurationError

    missing = []
    for module in ("starlette", "jinja2", "uvicorn", "multipart"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ConfigurationError(
            f"the web UI needs {', '.join(missing)}", hint='install it with pip install -e ".[ui]"'
        )


def register(app: typer.Typer) -> None:
    @app.command("ui", help="Serve a local web app: sessions, prompt diffs, span feedback, live runs.")
    def ui(
        host: str = typer.Option(
            "127.0.0.1", "--host", help="Address to bind; anything but loopback needs --allow-remote."
        ),
        port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port (0: any free port)."),
        allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow binding a non-loopback address."),
        sessions_dir: str = typer.Option(None, "--sessions-dir", envvar="PROMPTOMATIX_SESSIONS_DIR"),
        open_browser: bool = typer.Option(False, "--open", help="Open the URL in a browser."),
    ) -> None:
        import socket

        from promptomatix.errors import UsageError

        _check_deps()
        if host not in LOOPBACK and not allow_remote:
            raise UsageError(f"refusing to bind {host}: the UI can start runs and delete sessions",
                             hint="pass --allow-remote if you mean it (the token is still required)")  # fmt: skip
        import uvicorn

        from promptomatix.cli.fakes import clients_from_env
        from promptomatix.sessions import SessionStore
        from promptomatix.ui.app import create_app
        from promptomatix.ui.security import new_token

        token = new_token()
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        bound = sock.getsockname()[1]
        hosts = None if allow_remote else ["127.0.0.1", "localhost", "::1"]
        application = create_app(SessionStore(sessions_dir), token=token, clients=clients_from_env, allowed_hosts=hosts)
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{bound}/?token={token}"
        if host not in LOOPBACK:
            err_console().print(f"[yellow]warning:[/] serving on {host}: anyone who can reach it and has the URL can "
                                "start runs and delete sessions")  # fmt: skip
        typer.echo(f"Promptomatix UI: {url}\n(Ctrl-C stops the server; runs it started are interrupted)")
        if open_browser:
            import webbrowser

            webbrowser.open(url)
        config = uvicorn.Config(application, log_level="warning", access_log=False)
        uvicorn.Server(config).run(sockets=[sock])
