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
    recipe: Annotated[
        str | None,
        typer.Option(
            "--recipe",
            help="Train on dataset_NAME of this recipe (after `doctune curate examples NAME`) instead of the QA "
            "dataset: each example's chat, its last assistant turn the target; eval loss on its other splits.",
        ),
    ] = None,
    adapter: Annotated[
        list[str] | None,
        typer.Option(
            "--character",
            "--adapter",
            help="With --recipe character (any recipe with one adapter per value): train this character's adapter "
            "(name as in the dataset, any case; repeatable). Default: one adapter per character of the train split.",
        ),
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Fine-tune the student (LoRA by default) on the train split; eval loss on eval and rephrased_eval.

    \b
    doctune train                          the QA dataset -> one model
    doctune train --recipe qa              the same items from dataset_qa, by
                                           the generic path (any recipe's)
    doctune train --recipe character       one LoRA adapter per character,
                                           trained one after the other
    doctune train --recipe character --character HAMLET --character OPHELIA

    \b
    Every adapter is registered: `doctune models list --character HAMLET`.
    Each run folder (runs/<id>/) holds the resolved config.
    Next: `doctune eval --recipe character`, `doctune export-model ID --format lora-gguf`.
    """
    from doctune.stages import train as stage
    from doctune.train.distributed import LaunchError
    from doctune.train.tracking import TrackingError

    try:
        run_stage(stage.run, config, set_, workspace, resume=resume, recipe=recipe, adapter_keys=adapter)
    except (TrackingError, LaunchError) as exc:
        raise fail(f"train: {exc}") from None


@app.command("export-model")
def export_model_cmd(
    model_id: Annotated[str | None, typer.Argument(help="Registry id or prefix (default: the current model).")] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="adapter (PEFT), merged (safetensors), gguf (merged model for llama.cpp / Ollama), or lora-gguf "
            "(the LoRA adapter alone for llama.cpp: load it over the base GGUF, e.g. one per character).",
        ),
    ] = "merged",
    out: Annotated[Path | None, typer.Option(help="Output folder (default: <workspace>/models/<id>).")] = None,
    quant: Annotated[
        str | None, typer.Option(help="GGUF type: q8_0, f16, bf16, f32 (default: q8_0 for gguf, f16 for lora-gguf).")
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Export a trained model: the adapter alone, merged safetensors, or GGUF (needs `make gguf-tools`).

    \b
    llama.cpp with a character adapter over the base model:
      doctune export-model ID --format lora-gguf
      llama-cli -m base.gguf --lora models/ID/ID.lora.f16.gguf
    """
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
    character: Annotated[
        str | None,
        typer.Option("--character", help="Talk to a character of the ingested plays, in its voice (its adapter)."),
    ] = None,
    rag: Annotated[
        bool | None, typer.Option("--rag/--no-rag", show_default=False, help="With --character: retrieval.")
    ] = None,
    bias: Annotated[
        bool | None, typer.Option("--bias/--no-bias", show_default=False, help="With --character: logit bias.")
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Longest reply in tokens (without --character).")] = 256,
    kg: Annotated[
        bool, typer.Option("--kg", help="Start with graph context on (/kg on|off switches; needs `generate kg`).")
    ] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Chat in the terminal with a registered model or the base model (/reset clears, /exit quits).

    \b
    doctune chat                               the current model
    doctune chat --character OPHELIA           Ophelia's newest adapter (or the
                                               base model and her card)
    doctune chat --character HAMLET base       Hamlet's card on the base model
    doctune chat --character HAMLET --no-rag
    doctune chat --kg                          each question with its knowledge
                                               graph context (/kg on|off)

    \b
    With --character: /rag on|off, /bias on|off, /adapter on|off, /character NAME,
    /sources, /words, /settings, /reset, /help, /exit. Settings: converse.* in the
    config. Each chat is logged: `doctune conversations list`.
    """
    from doctune.converse.session import UnknownCharacter
    from doctune.registry import RegistryError
    from doctune.stages import models as stage

    try:
        cfg, ws = load_context(config, set_, workspace)
        if character is not None:
            from doctune.stages import converse

            converse.run_character_chat(cfg, ws, character, model_id, rag=rag, bias=bias)
            return
        stage.run_chat(cfg, ws, model_id, max_new_tokens=max_new_tokens, kg=kg)
    except (ConfigError, RegistryError, FileNotFoundError, UnknownCharacter, StaleArtifactError) as exc:
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
    for name, result in summary.results.items():
        if name == "eval" or name.startswith("eval "):
            from doctune.stages.pipeline import eval_summary

            console.print(eval_summary(result), markup=False, highlight=False)


@app.command("eval")
def eval_cmd(
    models: Annotated[
        list[str] | None,
        typer.Argument(
            help="Models: `base`, registry ids, or `role:NAME` for a config role's model (default: base + current); "
            "or `conversations`: the conversation benchmark of the character adapters.",
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
    recipe: Annotated[
        str | None,
        typer.Option(
            "--recipe",
            help="Evaluate this recipe's models (dataset_NAME) instead of the QA dataset: target perplexity vs each "
            "model's own base on the gate split, the recipe's gate recorded; for `character` also the fidelity "
            "benchmark (reports/fidelity.json and .html).",
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="With --recipe: a registry id to evaluate (repeatable; default: the newest "
            "model of the recipe per character and base).",
        ),
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Answer each split with each model, grade with the judge, report with confidence intervals, apply the gate.

    \b
    doctune eval                           QA dataset: base vs current model
    doctune eval --recipe qa               the recipe's model vs its base on
                                           rephrased_train (dataset_qa): graded
                                           replies, perplexity, the gate
    doctune eval --recipe character        every character adapter vs its base:
                                           held-out perplexity + gate, then the
                                           fidelity benchmark (own vs other
                                           adapters, speaker attribution, style)
    doctune eval --recipe character --model ID --model ID2
    doctune eval conversations             the conversation benchmark: every
                                           packaged scenario with the reference
                                           (adapters, rag, bias) and one switch
                                           at a time (no adapters, rag off, bias
                                           off, converse.compare_student)

    \b
    Fidelity settings: fidelity.* in the config, e.g. --set fidelity.reply_contexts=10
    A second student (a larger base): fidelity.compare_students = its adapters' ids
    Conversations: converse.* in the config (bench_scenarios, bench_max_tokens,
    compare_student, scenarios_dir); reports/conversations.{json,html}
    Next: `doctune models promote ID` (refused when the recorded gate failed)
    """
    from doctune.registry import RegistryError
    from doctune.stages import evaluate as stage

    if models and models[0] == "conversations":
        if recipe is not None or compare or model or len(models) > 1:
            raise fail("eval conversations takes no models, --recipe, --model or --compare (see converse.* settings)")
        _eval_conversations(config, set_, workspace)
        return
    if recipe is not None:
        _eval_recipe(recipe, [*(models or []), *(model or [])] or None, config, set_, workspace)
        return
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


def _eval_recipe(recipe: str, models: list[str] | None, config, set_, workspace) -> None:
    """`doctune eval --recipe NAME`: the recipe evaluation and, for character-like recipes, the fidelity report."""
    from doctune.registry import RegistryError
    from doctune.stages import evaluate_recipe

    try:
        cfg, ws = load_context(config, set_, workspace)
        result = evaluate_recipe.run(cfg, ws, recipe, models=models, progress=state.progress)
    except (ConfigError, StaleArtifactError, RegistryError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    console.print(result.stats["markdown"], markup=False, highlight=False)
    if "fidelity_markdown" in result.stats:
        console.print("")
        console.print(result.stats["fidelity_markdown"], markup=False, highlight=False)
    for model_id, gate in result.stats["gate"].items():
        verdict = "[green]PASSED[/]" if gate["passed"] else "[red]FAILED[/]"
        console.print(f"gate for {model_id}: {verdict} ({escape(gate['reason'])})")
        if not gate.get("recorded"):
            console.print(f"  [dim]not recorded on the registry: {escape(gate.get('not_recorded', ''))}[/]")
    for name, path in result.outputs.items():
        console.print(f"  {name} -> {path}")


def _eval_conversations(config, set_, workspace) -> None:
    """`doctune eval conversations`: the conversation benchmark, its summary and its report paths."""
    from doctune.converse.scenario import ScenarioError
    from doctune.converse.session import UnknownCharacter
    from doctune.registry import RegistryError
    from doctune.stages import evaluate_conversations

    try:
        cfg, ws = load_context(config, set_, workspace)
        result = evaluate_conversations.run(cfg, ws, progress=state.progress)
    except (ConfigError, StaleArtifactError, RegistryError, ScenarioError, UnknownCharacter) as exc:
        raise fail(str(exc)) from None
    console.print(result.stats["markdown"], markup=False, highlight=False)
    console.print(f"{result.counts['conversations']} conversations in {result.stats['seconds']:.0f} s")
    for name, path in result.outputs.items():
        console.print(f"  {name} -> {path}")
