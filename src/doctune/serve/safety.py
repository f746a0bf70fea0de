"""What keeps the workbench local and safe: bind rules, an access token, cross-site request protection and paths.

* The server binds 127.0.0.1 unless told otherwise; any other host needs ``--token`` (:func:`check_bind`).
* With a token, every request must carry it: ``?token=`` once (it is then kept in an HttpOnly cookie), the cookie,
  or an ``Authorization: Bearer`` header.
* Every request with a method that may write (anything but GET, HEAD, OPTIONS) must carry the page's CSRF secret in
  the ``X-Doctune-CSRF`` header (a cross-site form cannot set a header, and a cross-site ``fetch`` with one is
  stopped by the browser's preflight) and must not come from another origin (``Origin``/``Sec-Fetch-Site``). This is
  one middleware in front of every route, so a route added later is protected without doing anything.
* :func:`workspace_file` resolves a requested path inside the workspace and refuses anything outside it (``..``,
  absolute paths, symlinks pointing out).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-Doctune-CSRF"
TOKEN_COOKIE = "doctune_token"


class UnsafeBindError(Exception):
    """The server was asked to listen beyond this machine without an access token."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback ``host`` without a ``token`` (anyone on the network could read and change data)."""
    if not is_loopback(host) and not token:
        raise UnsafeBindError(
            f"refusing to listen on {host} without --token: the workbench reads and writes your workspace; "
            "pass --token SECRET (or keep the default --host 127.0.0.1)"
        )


def new_secret() -> str:
    return secrets.token_urlsafe(24)


def _same_origin(request: Request) -> bool:
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    parts = urlsplit(origin)
    return parts.netloc == request.headers.get("host", "")


class GuardMiddleware(BaseHTTPMiddleware):
    """The token check (when a token is set) and the cross-site check of every write, in front of every route."""

    def __init__(self, app, csrf_secret: str, token: str | None):
        super().__init__(app)
        self.csrf_secret = csrf_secret
        self.token = token

    async def dispatch(self, request: Request, call_next) -> Response:
        if self.token is not None:
            given = request.query_params.get("token")
            if given is not None and hmac.compare_digest(given, self.token):
                url = request.url.remove_query_params("token")
                response = RedirectResponse(str(url), status_code=303)
                response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
                return response
            presented = request.cookies.get(TOKEN_COOKIE) or request.headers.get("authorization", "").removeprefix(
                "Bearer "
            )
            if not presented or not hmac.compare_digest(presented, self.token):
                return PlainTextResponse("access token required: open the URL with ?token=...", status_code=401)
        if request.method not in SAFE_METHODS:
            header = request.headers.get(CSRF_HEADER, "")
            if not _same_origin(request) or not hmac.compare_digest(header, self.csrf_secret):
                return PlainTextResponse("cross-site request refused", status_code=403)
        return await call_next(request)


class OutsideWorkspaceError(Exception):
    """A requested path is not a file inside the workspace."""


def workspace_file(root: Path, relative: str) -> Path:
    """The file ``relative`` inside ``root``, or :class:`OutsideWorkspaceError` (absolute, ``..``, symlink out)."""
    base = root.resolve()
    if not relative or relative.startswith(("/", "\\")) or "\x00" in relative or ":" in relative.split("/")[0]:
        raise OutsideWorkspaceError(relative)
    target = (base / relative).resolve()
    if not target.is_relative_to(base) or not target.is_file():
        raise OutsideWorkspaceError(relative)
    return target
