"""``doctune characters``: explore the characters of the ingested plays."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from doctune.cli.common import EXPECTED_ERRORS, ConfigOpt, SetOpt, WorkspaceOpt, app, console, fail, load_context

HELP = "\n\n".join(
    (
        "Who speaks in each play, how much, after whom, and with which words.",
        "Reads the speeches artifact (and persons, for descriptions) that `doctune ingest` writes for plays, so "
        "ingest a play first: `doctune ingest --as play hamlet.txt`.",
        "Prints, per play, each canonical character with its number of speeches and words (--json: as JSON on "
        "stdout), and writes a report to <workspace>/reports/characters/: index.html (tables and plots in one page), "
        "characters.json (every number) and PNG plots: words per character and act, who speaks after whom within a "
        "scene, and each top character's most distinctive words (log-odds ratio against the rest of the play). "
        "Writes no artifact.",
    )
)


@app.command(help=HELP)
def characters(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the per-play character tables as JSON on stdout (report path in it).")
    ] = False,
    top: Annotated[
        int, typer.Option("--top", min=1, help="Characters (most words first) shown in the plots and per-act tables.")
    ] = 12,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Who speaks in each play, how much, after whom, and with which words (help text: ``HELP``)."""
    from doctune.stages import characters as stage

    try:
        cfg, ws = load_context(config, set_, workspace)
        result = stage.run(cfg, ws, top=top)
    except EXPECTED_ERRORS as exc:
        raise fail(str(exc)) from None
    if as_json:
        payload = {"workspace": str(ws.root), **result.outputs, "plays": result.stats["plays"]}
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    for play in result.stats["plays"]:
        table = Table(title=escape(f"{play['play']}: {play['speeches']} speeches, {play['words']} words"))
        for col in ("character", "speeches", "words", "share"):
            table.add_column(col, justify="left" if col == "character" else "right")
        for c in play["characters"]:
            name = c["name"] + (" (joint)" if c["joint"] else "") + (" (unresolved)" if c["unresolved"] else "")
            table.add_row(escape(name), str(c["speeches"]), str(c["words"]), f"{c['word_share']:.1%}")
        console.print(table)
    console.print(f"[bold green]characters[/]: report -> {escape(result.outputs['report'])}", highlight=False)
    console.print(f"  numbers -> {escape(result.outputs['json'])}", highlight=False)
