"""Run the workbench with uvicorn (``doctune serve``)."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator

from doctune.config import DoctuneConfig
from doctune.serve.app import create_app
from doctune.serve.safety import check_bind
from doctune.workspace import Workspace

log = logging.getLogger(__name__)


def serve(
    config: DoctuneConfig,
    workspace: Workspace,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    reviewer: str = "reviewer",
) -> None:
    """Serve until interrupted; refuses a non-loopback host without a token before opening any socket."""
    import uvicorn

    check_bind(host, token)
    app = create_app(workspace, config, token=token, reviewer=reviewer)
    shown = f"http://{host}:{port}/" + ("?token=<your token>" if token else "")
    log.info("doctune workbench on %s (workspace %s); Ctrl-C stops it", shown, workspace.root)
    uvicorn.run(app, host=host, port=port, log_level="warning")


@contextlib.contextmanager
def serve_in_thread(app, host: str = "127.0.0.1", port: int = 0, timeout_s: float = 20) -> Iterator[str]:
    """Run ``app`` with uvicorn in a background thread (port 0: a free one); yields its base URL. For the browser
    tests and the README's screenshots."""
    import uvicorn

    check_bind(host, None)
    if port == 0:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True, name="doctune-serve")
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the workbench did not start on {host}:{port}")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
