"""The ``doctune models`` commands: list, show, promote, roll back and remove trained models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.measure import Measurement
from rich.table import Table

from doctune.cli.common import ConfigOpt, SetOpt, WorkspaceOpt, app, console, fail, load_context
from doctune.config import ConfigError
from doctune.registry import ModelEntry, Registry, RegistryError, lineage

models_app = typer.Typer(no_args_is_help=True, help="The model registry: trained models and the current one.")
app.add_typer(models_app, name="models")

IdArg = Annotated[str, typer.Argument(help="Model id, or a unique prefix of it.")]


def _registry(config: Path | None, overrides: list[str] | None, workspace: Path | None) -> Registry:
    try:
        _, ws = load_context(config, overrides, workspace)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    return Registry(ws)


#: label columns shown first (then any other label, sorted)
LABEL_COLUMNS = ("recipe", "character", "play")


def parse_labels(pairs: list[str] | None, character: str | None = None) -> dict[str, str]:
    """``KEY=VALUE`` pairs (and ``--character NAME``) as a dict; a malformed pair is a usage error."""
    wanted = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE (e.g. character=HAMLET)", param_hint="--label")
        wanted[key.strip()] = value.strip()
    if character is not None:
        wanted["character"] = character
    return wanted


def matches_labels(entry: ModelEntry, wanted: dict[str, str]) -> bool:
    """Whether ``entry`` has every wanted label (values compared ignoring case)."""
    labels = {k: v.casefold() for k, v in entry.labels.items()}
    return all(labels.get(key) == value.casefold() for key, value in wanted.items())


def _label_columns(entries: list[ModelEntry]) -> list[str]:
    keys = {k for e in entries for k in e.labels}
    return [k for k in LABEL_COLUMNS if k in keys] + sorted(keys - set(LABEL_COLUMNS))


@models_app.command("list")
def list_cmd(
    character: Annotated[
        str | None,
        typer.Option("--character", help="Only the adapters of this character (same as --label character=NAME)."),
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            help="Only models with this label, KEY=VALUE (any case; repeatable: all must match), e.g. recipe=character"
            " or play=Hamlet. `doctune models show ID` lists a model's labels.",
        ),
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """List registered models; the current one is marked with *. Labelled models (a recipe's adapters, e.g. one
    per character) show their labels as columns: recipe, character, play."""
    wanted = parse_labels(label, character)
    reg = _registry(config, set_, workspace)
    try:
        entries = reg.list_entries()
        current = reg.current()
    except RegistryError as exc:
        raise fail(str(exc)) from None
    if not entries:
        console.print("no models registered yet (run `doctune train`)")
        return
    entries = [e for e in entries if matches_labels(e, wanted)]
    if not entries:
        shown = ", ".join(f"{k}={v}" for k, v in wanted.items())
        console.print(f"no model labelled {shown} (`doctune models list` shows every model and its labels)")
        return
    columns: dict[str, list[str]] = {"": ["*" if current and e.id == current.id else "" for e in entries]}
    columns["id"] = [e.id for e in entries]
    columns.update({col: [e.labels.get(col, "") for e in entries] for col in _label_columns(entries)})
    columns["created"] = [e.created_at[:16].replace("T", " ") for e in entries]
    columns["base"] = [e.base_model for e in entries]
    columns["method"] = [e.method for e in entries]
    losses = [e.metrics.get("final_loss") for e in entries]
    columns["final loss"] = [f"{x:.4f}" if isinstance(x, int | float) else "-" for x in losses]
    columns["status"] = [e.status for e in entries]
    console.print(_fitting_table(f"models in {reg.workspace.root}", columns))


def _table(title: str, columns: dict[str, list[str]], caption: str | None = None) -> Table:
    table = Table(title=title, caption=caption)
    for col in columns:
        table.add_column(col, no_wrap=col in ("", "id"))
    for row in zip(*columns.values(), strict=True):
        table.add_row(*row)
    return table


def _natural_width(table: Table) -> int:
    """The width ``table`` takes without wrapping any cell."""
    return Measurement.get(console, console.options.update(max_width=10_000), table).maximum


def _fitting_table(title: str, columns: dict[str, list[str]]) -> Table:
    """The table; when it is wider than the terminal, columns whose value is the same on every row (base, method,
    recipe, play...) move to the caption, then ``created`` goes (the id starts with the same time)."""
    table = _table(title, columns)
    if _natural_width(table) <= console.width:
        return table
    movable = [
        c for c in columns if c not in ("", "id", "created", "final loss", "status") and len(set(columns[c])) == 1
    ]
    caption = ", ".join(f"{c}: {columns[c][0]}" for c in movable if columns[c][0])
    columns = {c: v for c, v in columns.items() if c not in movable}
    table = _table(title, columns, caption or None)
    if _natural_width(table) > console.width:
        table = _table(title, {c: v for c, v in columns.items() if c != "created"}, caption or None)
    return table


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
