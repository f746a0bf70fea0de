"""The ``doctune models`` commands: list, show, promote, roll back and remove trained models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from doctune.cli.common import ConfigOpt, SetOpt, WorkspaceOpt, app, console, fail, load_context
from doctune.config import ConfigError
from doctune.registry import Registry, RegistryError, lineage

models_app = typer.Typer(no_args_is_help=True, help="The model registry: trained models and the current one.")
app.add_typer(models_app, name="models")

IdArg = Annotated[str, typer.Argument(help="Model id, or a unique prefix of it.")]


def _registry(config: Path | None, overrides: list[str] | None, workspace: Path | None) -> Registry:
    try:
        _, ws = load_context(config, overrides, workspace)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    return Registry(ws)


@models_app.command("list")
def list_cmd(config: ConfigOpt = None, set_: SetOpt = None, workspace: WorkspaceOpt = None) -> None:
    """List registered models; the current one is marked with *."""
    reg = _registry(config, set_, workspace)
    try:
        entries = reg.list_entries()
        current = reg.current()
    except RegistryError as exc:
        raise fail(str(exc)) from None
    if not entries:
        console.print("no models registered yet (run `doctune train`)")
        return
    table = Table(title=f"models in {reg.workspace.root}")
    for col in ("", "id", "created", "base", "method", "final loss", "status"):
        table.add_column(col, no_wrap=col in ("", "id"))
    for e in entries:
        loss = e.metrics.get("final_loss")
        table.add_row(
            "*" if current and e.id == current.id else "",
            e.id,
            e.created_at[:16].replace("T", " "),
            e.base_model,
            e.method,
            f"{loss:.4f}" if isinstance(loss, int | float) else "-",
            e.status,
        )
    console.print(table)


@models_app.command("show")
def show_cmd(model_id: IdArg, config: ConfigOpt = None, set_: SetOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Print a model's entry and its lineage (adapter -> dataset -> items -> chunks -> documents) as JSON."""
    reg = _registry(config, set_, workspace)
    try:
        entry = reg.get(model_id)
        chain = lineage(entry.id, reg.workspace)
    except RegistryError as exc:
        raise fail(str(exc)) from None
    payload = {"entry": entry.model_dump(mode="json"), "lineage": [s.model_dump(mode="json") for s in chain]}
    console.print(json.dumps(payload, indent=2), markup=False, highlight=False)


@models_app.command("promote")
def promote_cmd(
    model_id: IdArg,
    force: Annotated[bool, typer.Option("--force", help="Promote even a model that failed its gate.")] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Make a model the current one (refused for a model that failed its evaluation gate, unless --force)."""
    reg = _registry(config, set_, workspace)
    try:
        entry = reg.promote(model_id, force=force)
    except RegistryError as exc:
        raise fail(str(exc)) from None
    console.print(f"[green]current model:[/] {entry.id}")


@models_app.command("rollback")
def rollback_cmd(config: ConfigOpt = None, set_: SetOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Make the previous current model current again."""
    reg = _registry(config, set_, workspace)
    try:
        entry = reg.rollback()
    except RegistryError as exc:
        raise fail(str(exc)) from None
    console.print(f"[green]current model:[/] {entry.id}")


@models_app.command("rm")
def rm_cmd(
    model_id: IdArg,
    force: Annotated[bool, typer.Option("--force", help="Also remove the current model.")] = False,
    delete_files: Annotated[bool, typer.Option("--delete-files", help="Also delete the model's weights.")] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Remove a model from the registry (its weights stay unless --delete-files)."""
    reg = _registry(config, set_, workspace)
    try:
        entry = reg.remove(model_id, delete_files=delete_files, force=force)
    except RegistryError as exc:
        raise fail(str(exc)) from None
    deleted = f"; deleted {entry.weights_path}" if delete_files else ""
    console.print(f"removed {entry.id}{deleted}")
