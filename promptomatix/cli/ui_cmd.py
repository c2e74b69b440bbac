"""`promptomatix ui`: serve the local web app and print its URL (with the access token, like Jupyter)."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

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


def _check_sessions_dir(root: Path) -> None:
    """Refuse a sessions dir that cannot be one (a file, or below a file) before serving pages that would all fail."""
    from promptomatix.errors import ConfigurationError

    for path in (root, *root.parents):
        if path.exists():
            if not path.is_dir():
                why = "is a file, not a directory" if path == root else f"cannot be made: {path} is a file"
                raise ConfigurationError(f"the sessions dir {root} {why}",
                                         hint="pass --sessions-dir DIR with a directory (created if missing)")  # fmt: skip
            return


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to host:port; a port in use or an address this machine lacks is one line naming the fix."""
    from promptomatix.errors import ConfigurationError

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if e.errno == errno.EADDRINUSE:
            raise ConfigurationError(f"port {port} is in use on {host}",
                                     hint="pass another --port, or --port 0 for a free one") from None  # fmt: skip
        if e.errno in (errno.EACCES, errno.EPERM):
            raise ConfigurationError(f"cannot bind {where}: permission denied (ports below 1024 need root)",
                                     hint="pass another --port, or --port 0 for a free one") from None  # fmt: skip
        if e.errno == errno.EADDRNOTAVAIL or isinstance(e, socket.gaierror):
            what = "no such host name" if isinstance(e, socket.gaierror) else "it is not an address of this machine"
            raise ConfigurationError(f"cannot bind {host}: {what}",
                                     hint="pass --host 127.0.0.1, or an address this machine has") from None  # fmt: skip
        raise ConfigurationError(f"cannot bind {where}: {e.strerror or e}",
                                 hint="pass another --host or --port") from None  # fmt: skip
    return sock


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

        store = SessionStore(sessions_dir)
        _check_sessions_dir(store.root)
        token = new_token()
        sock = _bind(host, port)
        bound = sock.getsockname()[1]
        hosts = None if allow_remote else ["127.0.0.1", "localhost", "::1"]
        application = create_app(store, token=token, clients=clients_from_env, allowed_hosts=hosts)
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
