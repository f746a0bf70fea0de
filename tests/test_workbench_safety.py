"""The workbench's protections: loopback by default, a token elsewhere, every write route refuses cross-site requests
(enumerated from the app's router, so a new unprotected write route fails here), no file outside the workspace."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from doctune.cli import app as cli_app
from doctune.serve import create_app
from doctune.serve.app import api_routes
from doctune.serve.safety import CSRF_HEADER, SAFE_METHODS, UnsafeBindError, check_bind, workspace_file

from genutil import build_workspace

EVIL = "http://evil.example"


@pytest.fixture
def served(tmp_path):
    cfg, ws = build_workspace(tmp_path / "ws")
    (tmp_path / "secret.txt").write_text("outside the workspace", encoding="utf-8")
    return create_app(ws, cfg), ws, tmp_path


def write_routes(app) -> list[tuple[str, str]]:
    """(method, path with every parameter filled) of each route that accepts a method other than GET/HEAD/OPTIONS."""
    out = []
    for route in api_routes(app):
        for method in sorted(route.methods - SAFE_METHODS):
            out.append((method, re.sub(r"\{[^}]+\}", "x", route.path)))
    return out


def test_every_write_route_refuses_a_cross_site_request(served):
    app, _ws, _ = served
    routes = write_routes(app)
    paths = {p for _m, p in routes}
    # the writes the workbench has: reviews, promote, rollback, chat, starting a conversation
    assert any("review" in p for p in paths) and any("promote" in p for p in paths), routes
    assert any("rollback" in p for p in paths) and any("chat" in p for p in paths), routes
    assert any("conversations" in p for p in paths), routes
    client = TestClient(app)
    secret = app.state.ctx.csrf_secret
    for method, path in routes:
        attempts = {
            "cross-site, no secret": {"Origin": EVIL},
            "cross-site with the secret": {"Origin": EVIL, CSRF_HEADER: secret},
            "same origin, no secret": {},
            "wrong secret": {CSRF_HEADER: "guess"},
            "fetch metadata cross-site": {"Sec-Fetch-Site": "cross-site", CSRF_HEADER: secret},
        }
        for what, headers in attempts.items():
            reply = client.request(method, path, headers=headers, json={})
            assert reply.status_code == 403, f"{method} {path} ({what}) answered {reply.status_code}"
    # the same write with the page's secret from the same origin gets past the guard (whatever the route answers)
    method, path = next((m, p) for m, p in routes if "rollback" in p)
    reply = client.request(method, path, headers={CSRF_HEADER: secret, "Origin": "http://testserver"}, json={})
    assert reply.status_code != 403


def test_a_form_post_from_another_site_is_refused(served):
    app, _ws, _ = served
    method, path = next((m, p) for m, p in write_routes(app) if "review" in p)
    reply = TestClient(app).request(
        method, path, headers={"Origin": EVIL, "Content-Type": "application/x-www-form-urlencoded"}, content=b"a=b"
    )
    assert reply.status_code == 403


@pytest.mark.parametrize(
    "attempt",
    [
        "../secret.txt",
        "..%2fsecret.txt",
        "%2e%2e/secret.txt",
        "%2e%2e%2fsecret.txt",
        "artifacts/../../secret.txt",
        "/etc/passwd",
        "%2fetc%2fpasswd",
        "....//secret.txt",
        "link/secret.txt",
        "linked-secret.txt",
    ],
)
def test_no_route_serves_a_file_outside_the_workspace(served, attempt):
    app, ws, tmp_path = served
    (ws.root / "link").symlink_to(tmp_path, target_is_directory=True)
    (ws.root / "linked-secret.txt").symlink_to(tmp_path / "secret.txt")
    client = TestClient(app)
    reply = client.get(f"/files/{attempt}")
    assert reply.status_code == 404
    assert "outside the workspace" not in reply.text


def test_files_inside_the_workspace_are_served(served):
    app, ws, _ = served
    assert TestClient(app).get("/files/manifest.json").json()["artifacts"]["chunks"]["rows"] > 0
    assert workspace_file(ws.root, "manifest.json") == (ws.root / "manifest.json").resolve()


def test_page_routes_with_path_like_ids_serve_nothing_outside(served):
    """Every GET route with a parameter, given a traversal as the parameter, never shows the outside file."""
    app, _ws, _ = served
    client = TestClient(app)
    for route in api_routes(app):
        if "GET" in route.methods and "{" in route.path:
            path = re.sub(r"\{[^}]+\}", "..%2f..%2fsecret.txt", route.path)
            reply = client.get(path)
            assert "outside the workspace" not in reply.text, path


def test_a_non_loopback_bind_without_a_token_is_refused(tmp_path):
    for host in ("127.0.0.1", "localhost", "::1"):
        check_bind(host, None)
    for host in ("0.0.0.0", "192.168.1.5", "::"):
        with pytest.raises(UnsafeBindError, match="--token"):
            check_bind(host, None)
        check_bind(host, "s3cret")
    result = CliRunner().invoke(cli_app, ["--workspace", str(tmp_path / "ws"), "serve", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert "refusing to listen on 0.0.0.0 without --token" in result.output


def test_with_a_token_every_request_needs_it(tmp_path):
    cfg, ws = build_workspace(tmp_path / "ws")
    app = create_app(ws, cfg, token="s3cret")
    client = TestClient(app)
    assert client.get("/").status_code == 401
    assert client.get("/api/status").status_code == 401
    assert client.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    opened = client.get("/?token=s3cret", follow_redirects=False)
    assert opened.status_code == 303 and "token" not in opened.headers["location"]
    assert client.get("/").status_code == 200  # the cookie now carries it
    assert "s3cret" not in client.get("/").text  # never echoed into a page


def test_error_text_with_html_renders_inert_on_the_overview(tmp_path):
    cfg, ws = build_workspace(tmp_path / "ws")
    from doctune.records import Document, IngestError

    run = ws.start_run("ingest", cfg)
    docs = ws.read_rows("documents", Document, cfg)
    bad = IngestError(source_path="<img src=x onerror=alert(1)>.pdf", reason="<script>alert(1)</script>")
    run.write_artifact("documents", docs, Document, errors=[bad])
    page = TestClient(create_app(ws, cfg)).get("/").text
    assert "<script>alert(1)</script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
