"""``keel server``: the native API, the MLflow-compatible API and their security, over one store.

Start it with ``keel server`` (see docs/server.md); build the ASGI app in code with
:func:`keel.server.app.create_app`. Nothing here is imported by ``import keel``.
"""
