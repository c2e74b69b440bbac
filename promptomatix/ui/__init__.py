"""`promptomatix ui`: a local web app over the session store (sessions, diffs, span feedback, live runs).

Needs the `ui` extra (starlette, jinja2, uvicorn, python-multipart). `create_app` is imported lazily so that
importing this package costs nothing until the app is built.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> Any:
    from promptomatix.ui.app import create_app as _create

    return _create(*args, **kwargs)
