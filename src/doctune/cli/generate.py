"""The generate commands."""

from __future__ import annotations

import typer

from doctune.cli.common import ConfigOpt, SetOpt, WorkspaceOpt, app, run_stage

generate_app = typer.Typer(no_args_is_help=True, help="Generate training items with the generator model.")
app.add_typer(generate_app, name="generate")


@generate_app.command("qa")
def generate_qa(config: ConfigOpt = None, set_: SetOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Question/answer items per chunk, each checked against its citation (generate.strategy: auto picks span for
    small local models, one_call for endpoints)."""
    from doctune.stages import generate as stage

    run_stage(stage.run_qa, config, set_, workspace)


@generate_app.command("multihop")
def generate_multihop(config: ConfigOpt = None, set_: SetOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Items that need several chunks at once, over a bounded set of chunk groups."""
    from doctune.stages import generate as stage

    run_stage(stage.run_multihop, config, set_, workspace)


@generate_app.command("rephrase")
def generate_rephrase(config: ConfigOpt = None, set_: SetOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Reworded question and answer for each item of rephrase.source (same meaning and criteria)."""
    from doctune.stages import generate as stage

    run_stage(stage.run_rephrase, config, set_, workspace)
