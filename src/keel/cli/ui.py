"""``keel ui``: the web UI on the local store."""

from __future__ import annotations

import typer

from keel.cli._output import handle_errors


@handle_errors
def ui(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback only: the UI has no login)."),
    port: int = typer.Option(5056, min=1, max=65535, help="Port to listen on."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a browser."),
) -> None:
    """Serve the web UI on this project's store and open it in the browser.

    Experiments, runs (filter, sort, columns), run pages with charts, artifacts and lineage,
    comparisons, the model registry and pipeline runs. Every view is a URL you can share with
    someone who opens the same store. Stop it with Ctrl+C.
    """
    from keel.server import require_server_extra

    require_server_extra("keel ui")
    from keel.server.ui.app import serve_ui

    serve_ui(host=host, port=port, open_browser=not no_browser)
