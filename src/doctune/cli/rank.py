"""`doctune rank FEED`: the unseen posts of a feed file, ranked by predicted like."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from doctune.cli.common import (
    EXPECTED_ERRORS,
    ConfigOpt,
    SetOpt,
    WorkspaceOpt,
    app,
    console,
    fail,
    load_context,
    print_result,
    state,
)


@app.command()
def rank(
    feed: Annotated[Path, typer.Argument(help="Feed file: Mastodon API statuses (JSON list) or ActivityPub objects.")],
    top: Annotated[int | None, typer.Option("--top", min=1, help="Posts to show (default: rank.top).")] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="A likes model's registry id, or 'baseline' (default: rank.model, auto)."),
    ] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Write the HTML list here.")] = None,
    include_shown: Annotated[
        bool, typer.Option("--include-shown", help="Rank posts shown by an earlier run too (marked).")
    ] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Score the unseen posts of FEED by predicted like (embedding baseline, and a tuned likes model's yes
    probability when there is one), print the top ones, write them as HTML under reports/rank/, and remember them
    as shown (a second run skips them)."""
    from doctune.rank.report import print_ranked
    from doctune.stages import rank as stage

    if not feed.is_file():
        raise fail(f"{feed}: no such feed file")
    try:
        cfg, ws = load_context(config, set_, workspace)
        result = stage.run(
            cfg,
            ws,
            feed,
            top=top,
            model=model,
            html_path=html,
            include_shown=include_shown or None,
            progress=state.progress,
        )
    except EXPECTED_ERRORS as exc:
        raise fail(str(exc)) from None
    print_ranked(result.stats.pop("rows"), console, cfg.rank.max_post_chars)
    print_result(result)
