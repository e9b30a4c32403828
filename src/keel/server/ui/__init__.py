"""keel's web UI: server-rendered pages (Jinja2 + htmx) with uPlot charts, under ``/ui``.

``router`` is a FastAPI ``APIRouter`` that already carries the ``/ui`` prefix: include it as it is
(``app.include_router(router)``), and ``home_router`` (``/`` redirects to the UI) beside it. Its
routes read ``request.app.state.store``, ``request.app.state.artifacts`` and
``request.app.state.projects`` and declare keel's route policies, so ``keel server`` serves them
behind its authentication; :func:`keel.server.ui.app.create_ui_app` serves them alone for
``keel ui``. Templates and the vendored JavaScript and CSS live in this package (see
``static/README.md``).
"""

from __future__ import annotations

from keel.server.ui.routes import PREFIX, home_router, router

__all__ = ["PREFIX", "home_router", "router"]
