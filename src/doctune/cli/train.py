"""The train command."""

from __future__ import annotations

from typing import Annotated

import typer

from doctune.cli.common import ConfigOpt, SetOpt, WorkspaceOpt, app, run_stage


@app.command("train")
def train_cmd(
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the last interrupted run from its checkpoint.")
    ] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Fine-tune the student (LoRA by default) on the train split; eval loss on eval and rephrased_eval."""
    from doctune.stages import train as stage

    run_stage(stage.run, config, set_, workspace, resume=resume)
