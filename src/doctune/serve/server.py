"""Run the workbench with uvicorn (``doctune serve``)."""

from __future__ import annotations

import logging

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
