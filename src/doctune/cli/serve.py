"""``doctune serve``: the workbench, a local web app over the workspace."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from doctune.cli.common import EXPECTED_ERRORS, app, fail, load_context


@app.command(
    epilog="Pages: Overview (artifacts, outcomes, running stages), Browse (documents -> chunks -> items, citations "
    "highlighted), Review (approve / reject / edit with keys a r e, j k), Compare (eval reports, regressions), Models "
    "(registry, lineage, promote, rollback), Talk (chat, characters, conversation logs)."
)
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on. Anything but loopback needs --token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(envvar="DOCTUNE_TOKEN", help="Access token every request must carry (open the URL with ?token=)."),
    ] = None,
    reviewer: Annotated[
        str | None, typer.Option(help="Your reviewer id in the reviews artifact (default: your user name).")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Config YAML.")] = None,
    workspace: Annotated[Path | None, typer.Option("--workspace", "-w", help="Workspace folder.")] = None,
) -> None:
    """Start the workbench: browse, review, compare and talk in a browser, over the same workspace as the CLI.

    Example: `doctune serve --workspace doctune-work` then open http://127.0.0.1:8000/.
    """
    from doctune.serve.safety import UnsafeBindError, check_bind
    from doctune.serve.server import serve as serve_workbench

    try:
        check_bind(host, token)
        cfg, ws = load_context(config, None, workspace)
        who = reviewer or _user_name()
        typer.echo(f"doctune workbench: http://{host}:{port}/" + ("?token=<your token>" if token else ""))
        serve_workbench(cfg, ws, host=host, port=port, token=token, reviewer=who)
    except (UnsafeBindError, *EXPECTED_ERRORS) as exc:
        raise fail(str(exc)) from None


def _user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment
        return "reviewer"
