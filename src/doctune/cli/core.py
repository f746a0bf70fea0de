"""Commands of the spine: validate, ingest, summarize, chunk, export, status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from doctune.cli.common import (
    ConfigOpt,
    SetOpt,
    WorkspaceOpt,
    app,
    console,
    fail,
    load_context,
    run_stage,
    state,
)
from doctune.config import ConfigError, dump_config, load_config
from doctune.workspace import StaleArtifactError


@app.command()
def validate(
    config_file: Annotated[Path, typer.Argument(help="The config YAML to check.")], set_: SetOpt = None
) -> None:
    """Check a config file; print the resolved config (secrets masked)."""
    try:
        cfg = load_config(config_file, list(state.overrides) + list(set_ or []))
    except ConfigError as exc:
        raise fail(str(exc)) from None
    from doctune.llm import create_backend

    try:
        for role in type(cfg.models).model_fields:
            create_backend(getattr(cfg.models, role))
    except ConfigError as exc:
        raise fail(f"{config_file}: models.{role}: {exc}") from None
    console.print(f"[green]{config_file}: valid[/]")
    console.print(dump_config(cfg), markup=False, highlight=False)


@app.command()
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders (default: ingest.paths).")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
    as_kind: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="play: parse every txt/md file as a play (speeches and persons artifacts; a file in no known "
            "speaker layout is reported and kept as prose); prose: parse no file as a play. Default: detect plays "
            "when plays.detect is true (layout from plays.layout, auto-detected per file). mastodon / twitter: the "
            "paths are account archives (zip or folder; recognised without --as too) -> the posts artifact. code: "
            "every path is a code repository or folder (Python, JavaScript, TypeScript, Go) -> the code_units "
            "artifact (functions, classes, methods; tests, vendored and generated files per the code section).",
        ),
    ] = None,
) -> None:
    """Read txt, md, html, pdf and csv files into the documents artifact (plays also into speeches and persons)."""
    from doctune.ingest.social.detect import split_archives
    from doctune.stages import code_ingest, social_ingest
    from doctune.stages import ingest as stage

    if as_kind not in (None, "play", "prose", "mastodon", "twitter", "code"):
        raise typer.BadParameter("expected play, prose, mastodon, twitter or code", param_hint="--as")
    if as_kind == "code":  # every path is a repository -> code_units
        missing = [str(p) for p in paths or [] if not p.exists()]
        if missing:
            raise fail(f"ingest --as code: no such file or folder: {', '.join(missing)}")
        run_stage(code_ingest.run, config, set_, workspace, paths=[str(p) for p in paths or []])
        return
    archives, paths = split_archives(list(paths or []), as_kind)  # Mastodon / Twitter archives -> posts
    if archives:
        run_stage(social_ingest.run, config, set_, workspace, paths=archives, as_kind=as_kind)
        if not paths:
            return

    def ingest_and_report_plays(cfg, ws, **kwargs):
        result = stage.run(cfg, ws, **kwargs)
        for source, play in result.stats.get("plays", {}).items():
            layout = play["layout"] or "no layout"
            detail = play.get("message") or f"{play['speeches']} speeches, {play['characters']} characters"
            unresolved = f", unresolved: {'; '.join(play['unresolved'])}" if play.get("unresolved") else ""
            console.print(f"  play {source}: {layout}, {detail}{unresolved}", markup=False, highlight=False)
        return result

    run_stage(ingest_and_report_plays, config, set_, workspace, paths=paths, as_kind=as_kind)


@app.command()
def summarize(config: ConfigOpt = None, set_: SetOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Write one LLM summary per document (the generator role)."""
    from doctune.stages import summarize as stage

    run_stage(stage.run, config, set_, workspace)


@app.command()
def chunk(
    preview: Annotated[int | None, typer.Option("--preview", help="Print N chunks; write nothing.")] = None,
    min_chars: Annotated[int | None, typer.Option(help="Override chunk.min_chars.")] = None,
    max_chars: Annotated[int | None, typer.Option(help="Override chunk.max_chars.")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Split documents into sentence-boundary chunks."""
    from doctune.stages import chunk as stage

    overrides = list(set_ or [])
    if min_chars is not None:
        overrides.append(f"chunk.min_chars={min_chars}")
    if max_chars is not None:
        overrides.append(f"chunk.max_chars={max_chars}")
    if preview is None:
        run_stage(stage.run, config, overrides, workspace)
        return
    try:
        cfg, ws = load_context(config, overrides, workspace)
        chunks = stage.preview(cfg, ws, preview)
    except (ConfigError, StaleArtifactError) as exc:
        raise fail(str(exc)) from None
    for c in chunks:
        heading = " > ".join(c.heading_path) or "(no heading)"
        where = f" [{', '.join(c.locators)}]" if c.locators else ""
        console.rule(f"{c.chunk_id}  {c.n_chars} chars  {heading}{where}", style="cyan")
        console.print(c.text, markup=False, highlight=False)
    console.print(
        f"[dim]{len(chunks)} chunks shown (min_chars={cfg.chunk.min_chars}, max_chars={cfg.chunk.max_chars}); nothing written[/]"
    )


@app.command("export")
def export_cmd(
    push: Annotated[
        str | None, typer.Option("--push", help="Also push to the Hub as ORG/NAME (private by default).")
    ] = None,
    recipe: Annotated[
        str | None,
        typer.Option(
            "--recipe",
            help="Export dataset_NAME of this recipe (e.g. character, after `doctune curate examples NAME`) to "
            "<export.out_dir>/NAME/: a DatasetDict (datasets.load_from_disk) and chat/<split>.jsonl. "
            "Default: the QA dataset.",
        ),
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Hugging Face datasets (subsets qa, chunks, raw) on disk, chat and Alpaca JSONL; optionally pushed.

    With --recipe NAME: the curated examples of that recipe instead, one split per dataset split.
    """
    from doctune.stages import export as stage

    run_stage(stage.run, config, set_, workspace, push_to=push, recipe=recipe)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """List artifacts with row counts and freshness, and every per-file or per-item error."""
    try:
        cfg, ws = load_context(config, set_, workspace)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    entries = ws.status(cfg)
    if as_json:
        print(json.dumps({"workspace": str(ws.root), "artifacts": entries}, indent=2))
        return
    if not entries:
        console.print(f"workspace {ws.root}: no artifacts yet (start with `doctune ingest PATH`)")
        return
    table = Table(title=f"workspace {ws.root}")
    for col in ("artifact", "rows", "freshness", "stage", "written", "errors"):
        table.add_column(col)
    for e in entries:
        style = "green" if e["freshness"] == "fresh" else "yellow"
        table.add_row(
            e["name"],
            str(e["rows"]),
            f"[{style}]{e['freshness']}[/]",
            e["stage"],
            e["created_at"],
            str(len(e["errors"])),
        )
    console.print(table)
    for e in entries:
        outcomes = e["stats"].get("outcomes")
        if outcomes and not e["name"].endswith("_outcomes"):
            counts = ", ".join(f"{status} {n}" for status, n in sorted(outcomes.items(), key=lambda kv: -kv[1]))
            share = e["stats"].get("verified_citation_share")
            extra = f"; verified citations {share:.0%}" if share is not None else ""
            if e["stats"].get("grounding_checked"):
                extra += f"; grounded {e['stats']['grounded_share']:.0%} of {e['stats']['grounding_checked']} checked"
                rejected = ", ".join(f"{k} {v}" for k, v in e["stats"].get("dropped", {}).items())
                extra += f" (dropped: {rejected})" if rejected else ""
            console.print(f"  [cyan]{e['name']}[/] requests by outcome: {counts}{extra}")
    for e in entries:
        for rej in [] if e["name"].endswith("_outcomes") else e["stats"].get("rejected") or []:
            item = escape(f"{rej['question']!r} -> {rej['answer']!r}")
            console.print(f"  [yellow]{e['name']}[/] rejected ({rej['reason']}): {item}")
        for err in e["errors"]:
            where = err.get("source_path") or err.get("unit_id", "?")
            console.print(f"  [yellow]{e['name']}[/] {where}: {err.get('reason', '')}")
