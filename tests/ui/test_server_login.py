"""The UI router inside ``keel server`` with authentication on: a browser is sent to the sign-in
form, signs in with a password, and its changes carry the session's CSRF token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ui.conftest import UIServer, populate, screenshot


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from keel.server.app import create_app
    from keel.server.config import ServerConfig
    from keel.server.ui import router
    from keel.server.ui.routes import login_redirect
    from keel.store.base import forget_stores
    from keel.tracking.client import Client

    folder: Path = tmp_path_factory.mktemp("ui-server")
    store_url, artifacts = f"sqlite:///{folder / 'keel.db'}", str(folder / "artifacts")
    ids = populate(Client(store_url, artifacts))
    app = create_app(ServerConfig(store_url=store_url, artifact_uri=artifacts, auth=True))
    app.include_router(router)
    json_errors = app.exception_handlers[StarletteHTTPException]

    def errors(request: Any, exc: Any) -> Any:
        return login_redirect(request, exc.status_code) or json_errors(request, exc)

    app.add_exception_handler(StarletteHTTPException, errors)
    app.state.auth.create_user("ann", password="correct horse battery", is_admin=True)
    with UIServer(app) as running:
        yield running.url, ids
    forget_stores()


def test_pages_need_a_session_and_api_clients_keep_json_errors(server: Any) -> None:
    url, ids = server
    page = httpx.get(f"{url}/ui/runs/{ids['runs'][0]}", headers={"Accept": "text/html"})
    assert page.status_code == 303
    assert page.headers["location"] == f"/ui/login?next=%2Fui%2Fruns%2F{ids['runs'][0]}"
    api = httpx.get(f"{url}/ui/runs/{ids['runs'][0]}/series?key=loss", headers={"Accept": "application/json"})
    assert api.status_code == 401 and "token" in api.json()["message"]


@pytest.mark.browser
def test_sign_in_then_comment_with_the_csrf_token(server: Any, page: Any) -> None:
    url, ids = server
    run = ids["runs"][0]
    page.goto(f"{url}/ui/runs/{run}")
    page.wait_for_selector("form[data-login]")
    page.get_by_label("User").fill("ann")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#login-error:not([hidden])")
    assert "wrong user name or password" in page.locator("#login-error").inner_text()
    screenshot(page, "15-sign-in-error")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/ui/runs/{run}")
    page.wait_for_selector("body[data-charts-ready]")
    page.get_by_label("Add a comment").fill("signed in")
    page.get_by_role("button", name="Comment").click()
    page.wait_for_selector("#comments-title:has-text('Comments (1)')")
    assert "ann" in page.locator(".comment-list").inner_text()
    # the one expected error: the browser logs the 401 of the wrong password
    unexpected = [e for e in page.console_errors if "401" not in e or "/api/v1/auth/login" not in e]
    assert unexpected == [], "\n".join(unexpected)


def test_the_root_of_keel_server_redirects_to_the_ui(server: Any) -> None:
    url, _ = server
    response = httpx.get(f"{url}/")
    assert response.status_code == 307 and response.headers["location"] == "/ui/"


@pytest.mark.browser
def test_an_mlflow_run_link_leads_to_the_run_page_through_sign_in(server: Any, page: Any) -> None:
    url, ids = server
    run = ids["runs"][2]
    page.goto(f"{url}/#/experiments/{ids['experiment_id']}/runs/{run}")
    page.wait_for_selector("form[data-login]")
    page.get_by_label("User").fill("ann")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/ui/runs/{run}")
    assert page.console_errors == []
