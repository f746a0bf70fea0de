"""The model commands (train, export-model, chat) and `run`, the whole pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

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
    from doctune.train.tracking import TrackingError

    try:
        run_stage(stage.run, config, set_, workspace, resume=resume)
    except TrackingError as exc:
        raise fail(f"train: {exc}") from None


@app.command("export-model")
def export_model_cmd(
    model_id: Annotated[str | None, typer.Argument(help="Registry id or prefix (default: the current model).")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="adapter, merged (safetensors) or gguf (llama.cpp / Ollama).")
    ] = "merged",
    out: Annotated[Path | None, typer.Option(help="Output folder (default: <workspace>/models/<id>).")] = None,
    quant: Annotated[str, typer.Option(help="GGUF type: q8_0, f16, bf16, f32.")] = "q8_0",
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Export a trained model: the adapter alone, merged safetensors, or GGUF (needs `make gguf-tools`)."""
    from doctune.registry import RegistryError
    from doctune.stages import models as stage
    from doctune.train.export_model import ConverterMissing, ExportError

    try:
        cfg, ws = load_context(config, set_, workspace)
        print_result(stage.run_export_model(cfg, ws, model_id, fmt, out, quant))
    except (ConfigError, RegistryError, ConverterMissing, ExportError, ValueError) as exc:
        raise fail(str(exc)) from None


@app.command("chat")
def chat_cmd(
    model_id: Annotated[str | None, typer.Argument(help="Registry id or prefix, or `base` (default: current).")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Longest reply in tokens.")] = 256,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Chat in the terminal with a registered model or the base model (/reset clears, /exit quits)."""
    from doctune.registry import RegistryError
    from doctune.stages import models as stage

    try:
        cfg, ws = load_context(config, set_, workspace)
        stage.run_chat(cfg, ws, model_id, max_new_tokens=max_new_tokens)
    except (ConfigError, RegistryError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None


@app.command("run")
def run_cmd(
    config_file: Annotated[Path | None, typer.Argument(help="Config YAML (default: ./doctune.yaml).")] = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Every stage in order, each skipped when its artifact is current; resumable after a kill."""
    from doctune.stages.pipeline import run_pipeline

    def on_step(name: str, result) -> None:
        if result is None:
            console.print(f"[dim]{name}: current, skipped[/]")
        else:
            print_result(result)

    try:
        cfg, ws = load_context(config_file, set_, workspace)
        summary = run_pipeline(cfg, ws, progress=state.progress, on_step=on_step)
    except (ConfigError, StaleArtifactError) as exc:
        raise fail(str(exc)) from None
    console.rule("summary")
    console.print(f"workspace {ws.root}: ran {len(summary.ran)} stages, skipped {len(summary.skipped)}")
    for key, value in summary.totals.items():
        console.print(f"  {key}: {value}")
    for name, seconds in summary.seconds.items():
        console.print(f"  {name}: {seconds}s")
    if "eval" in summary.results:
        from doctune.stages.pipeline import eval_summary

        console.print(eval_summary(summary.results["eval"]), markup=False, highlight=False)


@app.command("eval")
def eval_cmd(
    models: Annotated[
        list[str] | None,
        typer.Argument(
            help="Models: `base`, registry ids, or `role:NAME` for a config role's model (default: base + current)."
        ),
    ] = None,
    compare: Annotated[
        tuple[str, str] | None,
        typer.Option("--compare", help="A/B: compare two models (ids or `base`) on the same items."),
    ] = None,
    check_judge: Annotated[
        bool,
        typer.Option("--check-judge", help="Print the grader check per kind of wrong answer (it always runs)."),
    ] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Answer each split with each model, grade with the judge, report with confidence intervals, apply the gate."""
    from doctune.registry import RegistryError
    from doctune.stages import evaluate as stage

    chosen = list(compare) if compare else (list(models) if models else None)
    try:
        cfg, ws = load_context(config, set_, workspace)
        result = stage.run(cfg, ws, models=chosen, progress=state.progress)
    except (ConfigError, StaleArtifactError, RegistryError) as exc:
        raise fail(str(exc)) from None
    console.print(result.stats["markdown"], markup=False, highlight=False)
    if check_judge:
        jc = result.stats["judge_check"]
        kinds = ", ".join(f"{kind} {share:.0%}" for kind, share in jc["by_kind"].items())
        console.print(
            f"judge check: references judged correct {jc['reference_correct']:.0%}, "
            f"wrong answers judged incorrect {jc['wrong_incorrect']:.0%} ({kinds}), agreement {jc['agreement']:.0%}"
        )
    for model, gate in result.stats["gate"].items():
        verdict = "[green]PASSED[/]" if gate["passed"] else "[red]FAILED[/]"
        console.print(f"gate for {model}: {verdict} ({escape(gate['reason'])})")
        if not gate.get("recorded"):
            console.print(f"  [dim]not recorded on the registry: {escape(gate.get('not_recorded', ''))}[/]")
    for name, path in result.outputs.items():
        console.print(f"  {name} -> {path}")
