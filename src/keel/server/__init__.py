"""``keel server``: the native API, the MLflow-compatible API and their security, over one store.

Start it with ``keel server`` (see docs/server.md); build the ASGI app in code with
:func:`keel.server.app.create_app`. Nothing here is imported by ``import keel``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

#: the modules of the ``server`` extra, each with the package that provides it
SERVER_MODULES: dict[str, str] = {
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
    "argon2": "argon2-cffi",
    "jinja2": "jinja2",
    "orjson": "orjson",
    "httpx": "httpx",
}


def require_server_extra(purpose: str, modules: Sequence[str] = tuple(SERVER_MODULES)) -> None:
    """Raise :class:`~keel.errors.MissingDependencyError` (naming ``pip install 'keel-mlops[server]'``)
    when a module of the ``server`` extra cannot be imported.

    The server and the UI import these at module level; checking first turns a traceback from deep
    inside ``keel server`` or ``keel ui`` into one line that says which command fixes it.
    """
    from keel.errors import MissingDependencyError

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise MissingDependencyError(SERVER_MODULES.get(module, module), "server", purpose) from None
