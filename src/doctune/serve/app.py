"""The workbench application: one :class:`ServeContext` (workspace, config, secrets, caches) and the page routers.

``create_app`` builds a FastAPI app; ``doctune serve`` runs it with uvicorn (:func:`doctune.serve.server.serve`).
Page modules get the context with ``context(request)`` and render with :meth:`ServeContext.render` (Jinja2 with
autoescape on: every user or model text is escaped unless a template says otherwise, and none does for such text).
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from doctune.config import DoctuneConfig
from doctune.serve.safety import CSRF_HEADER, GuardMiddleware, OutsideWorkspaceError, new_secret, workspace_file
from doctune.workspace import Workspace

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
#: the page modules, in menu order: (module, path, menu label)
PAGES: tuple[tuple[str, str, str], ...] = (
    ("overview", "/", "Overview"),
    ("browse", "/browse", "Browse"),
    ("review", "/review", "Review"),
    ("compare", "/compare", "Compare"),
    ("models", "/models", "Models"),
    ("knowledge", "/knowledge", "Knowledge"),
    ("talk", "/talk", "Talk"),
)


@dataclass
class ServeContext:
    """What every route needs: the workspace and config, the secrets, and caches keyed by artifact content."""

    workspace: Workspace
    config: DoctuneConfig
    csrf_secret: str = field(default_factory=new_secret)
    token: str | None = None
    reviewer: str = "reviewer"
    templates: Jinja2Templates = field(default_factory=lambda: Jinja2Templates(directory=str(HERE / "templates")))
    lock: threading.RLock = field(default_factory=threading.RLock)
    _cache: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def render(self, request: Request, template: str, **values: Any) -> HTMLResponse:
        page = values.pop("page", template.removesuffix(".html"))
        return self.templates.TemplateResponse(
            request,
            template,
            {"ctx": self, "pages": PAGES, "page": page, "csrf": self.csrf_secret, "csrf_header": CSRF_HEADER, **values},
        )

    def artifact_sha(self, *names: str) -> tuple[str | None, ...]:
        """The manifest sha256 of each artifact (None when missing): a cache key that changes with the content."""
        manifest = self.workspace.manifest()
        return tuple(manifest[n].sha256 if n in manifest else None for n in names)

    def cached(self, key: str, version: Any, build: Callable[[], Any]) -> Any:
        """``build()`` once per ``version`` of ``key`` (e.g. the sha256 of the artifacts it reads)."""
        with self.lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == version:
                return hit[1]
        value = build()
        with self.lock:
            self._cache[key] = (version, value)
        return value


def api_routes(router: Any) -> list[APIRoute]:
    """Every endpoint of an app or router, included routers walked (FastAPI keeps them as wrappers in ``routes``)."""
    found: list[APIRoute] = []
    for route in router.routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found.extend(api_routes(route.original_router))
    return found


def context(request: Request) -> ServeContext:
    return request.app.state.ctx


def create_app(
    workspace: Workspace | str | Path,
    config: DoctuneConfig,
    token: str | None = None,
    reviewer: str = "reviewer",
    csrf_secret: str | None = None,
) -> FastAPI:
    """The workbench over ``workspace``: every page router, static files, safe workspace files, the guards."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    ctx = ServeContext(workspace=ws, config=config, token=token, reviewer=reviewer)
    if csrf_secret:
        ctx.csrf_secret = csrf_secret
    app = FastAPI(title="doctune workbench", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ctx = ctx
    app.add_middleware(GuardMiddleware, csrf_secret=ctx.csrf_secret, token=token)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.get("/files/{relative:path}", name="workspace_file")
    def serve_workspace_file(relative: str) -> FileResponse:
        """A file of the workspace (reports, plots); nothing outside it."""
        try:
            path = workspace_file(ws.root, relative)
        except OutsideWorkspaceError:
            raise HTTPException(404, "no such file in the workspace") from None
        return FileResponse(path)

    for module, _path, _label in PAGES:
        router = importlib.import_module(f"doctune.serve.{module}").router
        app.include_router(router)
    return app
