"""The curate commands and the curation report printout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from doctune.cli.common import (
    ConfigOpt,
    SetOpt,
    WorkspaceOpt,
    app,
    console,
    fail,
    load_context,
    print_result,
    run_stage,
    state,
)
from doctune.config import ConfigError
from doctune.workspace import StaleArtifactError

curate_app = typer.Typer(help="Dedup, cluster, split, report and map the generated items.")
app.add_typer(curate_app, name="curate")


@curate_app.callback(invoke_without_command=True)
def curate_all(
    ctx: typer.Context, config: ConfigOpt = None, set_: SetOpt = None, workspace: WorkspaceOpt = None
) -> None:
    """With no subcommand: dedup, cluster, split, report and map, in order."""
    if ctx.invoked_subcommand is not None:
        return
    from doctune.stages import curate_report

    try:
        cfg, ws = load_context(config, set_, workspace)
        for result in curate_report.run_all(cfg, ws, progress=state.progress):
            print_result(result)
            if "report" in result.stats:
                _print_curation_report(result.stats["report"])
    except (ConfigError, StaleArtifactError) as exc:
        raise fail(str(exc)) from None


@curate_app.command("dedup")
def curate_dedup(config: ConfigOpt = None, set_: SetOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Embed items (embedder role) and drop near-duplicates, keeping the better item of each group."""
    from doctune.stages import curate as stage

    run_stage(stage.run_dedup, config, set_, workspace)


@curate_app.command("cluster")
def curate_cluster(config: ConfigOpt = None, set_: SetOpt = None, workspace: WorkspaceOpt = None) -> None:
    """k-means clusters (k by silhouette and elbow, plotted), named by the generator."""
    from doctune.stages import curate as stage

    run_stage(stage.run_cluster, config, set_, workspace)


@curate_app.command("tag")
def curate_tag(config: ConfigOpt = None, set_: SetOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Short topic tags for each item (optional; `curate split` merges them in)."""
    from doctune.stages import curate as stage

    run_stage(stage.run_tag, config, set_, workspace)


@curate_app.command("split")
def curate_split(config: ConfigOpt = None, set_: SetOpt = None, workspace: WorkspaceOpt = None) -> None:
    """train / eval stratified by cluster, rephrased_eval, mirror and manual splits."""
    from doctune.stages import curate as stage

    run_stage(stage.run_split, config, set_, workspace)


@curate_app.command("report")
def curate_report_cmd(config: ConfigOpt = None, set_: SetOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Leakage between eval and train, coverage per document and chunk, distributions (JSON + terminal)."""
    from doctune.stages import curate_report

    try:
        cfg, ws = load_context(config, set_, workspace)
        result = curate_report.run_report(cfg, ws, progress=state.progress)
    except (ConfigError, StaleArtifactError) as exc:
        raise fail(str(exc)) from None
    _print_curation_report(result.stats["report"])
    console.print(f"  report -> {result.outputs['report']}")


@curate_app.command("map")
def curate_map(
    color_by: Annotated[str, typer.Option(help="cluster, split, category or dataset.")] = "cluster",
    overlay: Annotated[
        list[Path] | None, typer.Option(help="Another workspace whose dataset is drawn in the same map (repeatable).")
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """An interactive 2D map of the items as a standalone HTML file."""
    from doctune.stages import curate_report

    try:
        cfg, ws = load_context(config, set_, workspace)
        print_result(curate_report.run_map(cfg, ws, color_by=color_by, overlays=overlay, progress=state.progress))
    except (ConfigError, StaleArtifactError, ValueError) as exc:
        raise fail(str(exc)) from None


@curate_app.command("examples")
def curate_examples_cmd(
    recipe: Annotated[
        str, typer.Argument(help="The recipe whose examples_<RECIPE> to curate (e.g. character).", show_default=False)
    ],
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Curate a recipe's examples into dataset_<RECIPE>: drop duplicates and failed checks, split by its policy.

    \b
    For recipes that write examples_<RECIPE> (`doctune generate RECIPE` first),
    e.g. character: whole scenes are held out as eval, enough for every
    character (character.min_heldout). Dropped examples and why: `doctune status`.
    Next: `doctune export --recipe RECIPE`, then `doctune train`.
    """
    from collections import Counter

    from doctune.stages import NothingUsable
    from doctune.stages import curate_examples as stage

    try:
        cfg, ws = load_context(config, set_, workspace)
        result = stage.run(cfg, ws, recipe, progress=state.progress)
    except (ConfigError, StaleArtifactError, NothingUsable) as exc:
        raise fail(str(exc)) from None
    dropped = result.errors
    result.errors = []
    print_result(result)
    reasons = Counter(
        r["reason"].split(" of ")[0] if r["reason"].startswith("duplicate") else r["reason"] for r in dropped
    )
    for reason, n in reasons.most_common():
        console.print(f"  [yellow]dropped[/] {n}: {reason}")
    for key, per_split in result.stats.get("per_adapter", {}).items():
        console.print(f"  {key}: " + ", ".join(f"{split} {n}" for split, n in per_split.items()))


def _print_curation_report(report: dict) -> None:
    dist = report["distributions"]
    table = Table(title="dataset")
    for col in ("split", "items"):
        table.add_column(col)
    for split, n in dist["splits"].items():
        table.add_row(split, str(n))
    console.print(table)
    console.print("  difficulty: " + ", ".join(f"{k}: {v}" for k, v in dist["difficulty"].items()))
    console.print("  category: " + ", ".join(f"{k}: {v}" for k, v in dist["category"].items()))
    leak = report["leakage"]
    console.print(
        f"  leakage: {leak['near_copies']} eval items with a train near-copy (cosine >= {leak['threshold']}); "
        f"max similarity {leak['max_similarity']:.3f}"
    )
    for row in leak["items"]:
        if row["near_copy"]:
            console.print(
                f"    [yellow]{row['split']} {row['item_id']}[/] ~ train {row['nearest_train_id']} ({row['similarity']:.3f}): {row['question']}"
            )
    cov = report["coverage"]
    docs = Table(title=f"coverage (chunks cited: {cov['chunk_coverage']:.0%})")
    for col in ("document", "items", "chunks cited"):
        docs.add_column(col)
    for d in cov["documents"]:
        docs.add_row(d["source_path"], str(d["items"]), f"{d['chunks_cited']}/{d['chunks']}")
    console.print(docs)
    if cov["uncited_chunks"]:
        console.print(
            f"  chunks no item cites ({len(cov['uncited_chunks'])}): "
            + ", ".join(c["chunk_id"] for c in cov["uncited_chunks"])
        )
