"""``doctune search``: hybrid keyword and embedding search over the imported posts."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from doctune.cli.common import EXPECTED_ERRORS, ConfigOpt, SetOpt, WorkspaceOpt, app, console, fail, load_context


def _marked(snippet: str) -> str:
    """The snippet as rich markup: escaped, each **word** in bold."""
    parts = snippet.split("**")
    return "".join(escape(p) if i % 2 == 0 else f"[bold yellow]{escape(p)}[/]" for i, p in enumerate(parts))


@app.command()
def search(
    query: Annotated[str, typer.Argument(help='What to look for: words, "a phrase", word* (any script).')],
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", help="Only these kinds: post, reply, boost, like, bookmark, feed (repeat or a,b)."),
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="Written on or after this date (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Written on or before this date (YYYY-MM-DD).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="Results (default: search.limit).")] = None,
    mine: Annotated[
        bool | None, typer.Option("--mine/--others", help="Only my posts and actions / only other people's.")
    ] = None,
    keyword_only: Annotated[
        bool, typer.Option("--keyword-only", help="BM25 only: no embedding model is loaded.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Search everything imported (text, alt text, content warnings, authors); the index is built or updated first
    when the posts changed."""
    from doctune.stages.search import make_filters
    from doctune.stages.search import search as run_search

    try:
        make_filters(kind, since, until, mine)
    except ValueError as exc:
        raise fail(f"search: {exc}") from None
    try:
        cfg, ws = load_context(config, set_, workspace)
        hits = run_search(
            cfg, ws, query, kind=kind, since=since, until=until, limit=limit, mine=mine, keyword_only=keyword_only
        )
    except EXPECTED_ERRORS as exc:
        raise fail(str(exc)) from None
    if as_json:
        print(json.dumps({"query": query, "hits": [h.model_dump() for h in hits]}, indent=2, ensure_ascii=False))
        return
    if not hits:
        console.print(f"no post matches {escape(query)!r}")
        return
    table = Table(title=f"search: {escape(query)}", show_lines=True)
    for name in ("#", "date", "kind", "author"):
        table.add_column(name, no_wrap=name != "author", overflow="fold")
    table.add_column("post", overflow="fold", min_width=30, ratio=1)
    table.add_column("found by", no_wrap=True)
    for i, h in enumerate(hits, start=1):
        where = "" if h.field == "text" else f"[dim]({h.field.replace('_', ' ')})[/] "
        link = f"\n[link={escape(h.url)}]{escape(h.url)}[/link]" if h.url else ""
        table.add_row(
            str(i),
            h.created_at[:16].replace("T", " ") or "?",
            h.kind,
            escape(h.author),
            where + _marked(h.snippet) + link,
            "\n".join(h.found_by),
        )
    console.print(table)
