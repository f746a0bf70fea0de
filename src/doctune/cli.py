"""The ``doctune`` command line: parses arguments and calls library functions, nothing more."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from doctune.config import DEFAULT_CONFIG_FILE, ConfigError, DoctuneConfig, dump_config, load_config
from doctune.stages import StageResult
from doctune.workspace import StaleArtifactError, Workspace

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Turn documents into training data and a tuned model."
)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help=f"Config YAML (default: ./{DEFAULT_CONFIG_FILE} if present).")
]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Override a config key: dotted.key=value (repeatable).")
]
WorkspaceOpt = Annotated[
    Path | None, typer.Option("--workspace", "-w", help="Workspace folder (default: doctune-work).")
]


class State:
    workspace: Path | None = None
    config: Path | None = None
    overrides: list[str] = []  # noqa: RUF012
    progress: bool = True


state = State()


@app.callback()
def main_options(
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Warnings only, no progress bars.")] = False,
) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(console=err_console, show_path=False)])
    for noisy in ("httpx", "openai", "urllib3", "trafilatura", "pypdf"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    state.workspace, state.config, state.overrides, state.progress = workspace, config, list(set_ or []), not quiet


def _load(config: Path | None, overrides: list[str] | None, workspace: Path | None) -> tuple[DoctuneConfig, Workspace]:
    extra = list(state.overrides) + list(overrides or [])
    ws = workspace or state.workspace
    if ws is not None:
        extra.append(f"workspace={ws}")
    cfg = load_config(config or state.config, extra)
    return cfg, Workspace(cfg.workspace)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=1)


def _report(result: StageResult) -> None:
    counts = ", ".join(f"{v} {k}" for k, v in result.counts.items())
    console.print(f"[bold green]{result.stage}[/]: {counts}")
    for err in result.errors:
        console.print(f"  [yellow]skipped[/] {err.get('source_path', '?')}: {err.get('reason', '')}")
    if "outcomes" in result.stats:
        console.print("  outcomes: " + ", ".join(f"{k} {v}" for k, v in result.stats["outcomes"].items()))
    if "verified_citation_share" in result.stats:
        console.print(f"  items with verified citations: {result.stats['verified_citation_share']:.1%}")
    if "llm" in result.stats:
        u = result.stats["llm"]
        console.print(
            f"  LLM calls {u['calls']} (cached {u['cache_hits']}, failed {u['failures']}), "
            f"tokens {u['prompt_tokens']} in / {u['completion_tokens']} out"
        )
    for name, path in result.outputs.items():
        console.print(f"  {name} -> {path}")


def _run_stage(fn, config: Path | None, overrides: list[str] | None, workspace: Path | None, **kwargs) -> None:
    try:
        cfg, ws = _load(config, overrides, workspace)
        _report(fn(cfg, ws, progress=state.progress, **kwargs))
    except (ConfigError, StaleArtifactError) as exc:
        raise _fail(str(exc)) from None


@app.command()
def validate(
    config_file: Annotated[Path, typer.Argument(help="The config YAML to check.")], set_: SetOpt = None
) -> None:
    """Check a config file; print the resolved config (secrets masked)."""
    try:
        cfg = load_config(config_file, list(state.overrides) + list(set_ or []))
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    from doctune.llm import create_backend

    try:
        for role in type(cfg.models).model_fields:
            create_backend(getattr(cfg.models, role))
    except ConfigError as exc:
        raise _fail(f"{config_file}: models.{role}: {exc}") from None
    console.print(f"[green]{config_file}: valid[/]")
    console.print(dump_config(cfg), markup=False, highlight=False)


@app.command()
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders (default: ingest.paths).")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Read txt, md, html, pdf and csv files into the documents artifact."""
    from doctune.stages import ingest as stage

    _run_stage(stage.run, config, set_, workspace, paths=[str(p) for p in paths or []])


@app.command()
def summarize(config: ConfigOpt = None, set_: SetOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Write one LLM summary per document (the generator role)."""
    from doctune.stages import summarize as stage

    _run_stage(stage.run, config, set_, workspace)


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
        _run_stage(stage.run, config, overrides, workspace)
        return
    try:
        cfg, ws = _load(config, overrides, workspace)
        chunks = stage.preview(cfg, ws, preview)
    except (ConfigError, StaleArtifactError) as exc:
        raise _fail(str(exc)) from None
    for c in chunks:
        heading = " > ".join(c.heading_path) or "(no heading)"
        where = f" [{', '.join(c.locators)}]" if c.locators else ""
        console.rule(f"{c.chunk_id}  {c.n_chars} chars  {heading}{where}", style="cyan")
        console.print(c.text, markup=False, highlight=False)
    console.print(
        f"[dim]{len(chunks)} chunks shown (min_chars={cfg.chunk.min_chars}, max_chars={cfg.chunk.max_chars}); nothing written[/]"
    )


generate_app = typer.Typer(no_args_is_help=True, help="Generate training items with the generator model.")
app.add_typer(generate_app, name="generate")


@generate_app.command("qa")
def generate_qa(config: ConfigOpt = None, set_: SetOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Question/answer items per chunk, with criteria, difficulty, category and verified citations."""
    from doctune.stages import generate as stage

    _run_stage(stage.run_qa, config, set_, workspace)


@generate_app.command("multihop")
def generate_multihop(config: ConfigOpt = None, set_: SetOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Items that need several chunks at once, over a bounded set of chunk groups."""
    from doctune.stages import generate as stage

    _run_stage(stage.run_multihop, config, set_, workspace)


@generate_app.command("rephrase")
def generate_rephrase(config: ConfigOpt = None, set_: SetOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Reworded question and answer for each item of rephrase.source (same meaning and criteria)."""
    from doctune.stages import generate as stage

    _run_stage(stage.run_rephrase, config, set_, workspace)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """List artifacts with row counts and freshness, and every per-file or per-item error."""
    try:
        cfg, ws = _load(config, set_, workspace)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
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
            console.print(f"  [cyan]{e['name']}[/] requests by outcome: {counts}{extra}")
    for e in entries:
        for err in e["errors"]:
            where = err.get("source_path") or err.get("unit_id", "?")
            console.print(f"  [yellow]{e['name']}[/] {where}: {err.get('reason', '')}")


def main() -> None:
    app()
