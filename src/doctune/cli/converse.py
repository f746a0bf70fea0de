"""``doctune converse`` and ``doctune conversations list|show``: characters talking to each other (and to you)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from doctune.cli.common import EXPECTED_ERRORS, ConfigOpt, SetOpt, WorkspaceOpt, app, console, fail, load_context

conversations_app = typer.Typer(help="The logged chats and conversations (<workspace>/conversations/).")
app.add_typer(conversations_app, name="conversations")


def _errors() -> tuple[type[Exception], ...]:
    from doctune.converse.scenario import ScenarioError
    from doctune.registry import RegistryError

    return (*EXPECTED_ERRORS, ScenarioError, RegistryError, FileNotFoundError)


@app.command("converse")
def converse_cmd(
    characters: Annotated[
        str | None, typer.Option("--characters", help="2 to 4 characters, comma-separated: HAMLET,'LADY MACBETH'.")
    ] = None,
    scenario: Annotated[
        Path | None, typer.Option("--scenario", help="A scenario YAML (characters, setting, entrances and exits).")
    ] = None,
    topic: Annotated[str, typer.Option("--topic", help="What they talk about (with --characters).")] = "",
    turns: Annotated[int | None, typer.Option("--turns", min=1, help="Turns (default: converse.max_turns).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Sampling seed (default: converse.seed).")] = None,
    policy: Annotated[
        str | None, typer.Option("--policy", help="round_robin | addressed | natural (default: converse.policy).")
    ] = None,
    rag: Annotated[
        bool | None, typer.Option("--rag/--no-rag", show_default=False, help="Retrieval (default: converse.rag).")
    ] = None,
    bias: Annotated[
        bool | None, typer.Option("--bias/--no-bias", show_default=False, help="Logit bias (default: converse.bias).")
    ] = None,
    join: Annotated[bool, typer.Option("--join", help="Take part yourself (as converse.user_name).")] = False,
    base: Annotated[bool, typer.Option("--base", help="Every character on the base model (no adapters).")] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Characters of the ingested plays talk, each with its own adapter over one loaded base model.

    \b
    doctune converse --characters HAMLET,'LADY MACBETH' --turns 6 --topic "a crown"
    doctune converse --scenario scenes/feast.yaml --seed 3 --policy addressed
    doctune converse --characters OPHELIA,HAMLET --join          you speak too

    \b
    Turn policies: round_robin (in order), addressed (the character named in the
    last turn answers), natural (the base model picks who speaks). Each character
    hears only the turns spoken while it is on stage (scenario events: enter/exit).
    Every turn is logged as it finishes: `doctune conversations show ID`.
    Ctrl-C stops; the finished turns stay in the log.
    """
    from doctune.stages import converse as stage

    names = [c.strip() for c in (characters or "").split(",") if c.strip()]
    if policy is not None and policy not in ("round_robin", "addressed", "natural"):
        raise fail(f"--policy must be round_robin, addressed or natural, not {policy!r}")
    try:
        cfg, ws = load_context(config, set_, workspace)
        result = stage.run_conversation(
            cfg,
            ws,
            names,
            scenario_path=scenario,
            topic=topic,
            turns=turns,
            seed=seed,
            policy=policy,
            rag=rag,
            bias=bias,
            join=join,
            use_adapters=not base,
        )
    except _errors() as exc:
        raise fail(str(exc)) from None
    console.print(
        f"[bold green]converse[/]: {result.counts['turns']} turns ({escape(result.stats['stop'])}); "
        f"log {escape(result.stats['id'])}",
        highlight=False,
    )


@conversations_app.command("list")
def list_cmd(config: ConfigOpt = None, set_: SetOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Every logged chat and conversation, oldest first."""
    from doctune.stages import converse as stage

    try:
        _cfg, ws = load_context(config, set_, workspace)
    except _errors() as exc:
        raise fail(str(exc)) from None
    rows = stage.list_conversations(ws)
    if not rows:
        console.print("no conversation yet: `doctune converse --characters A,B` or `doctune chat --character NAME`")
        return
    for row in rows:  # one line each, the id whole (to copy into `conversations show`)
        console.print(
            f"{escape(row['id'])}  {row['kind']}  {row['turns']} turns  {escape(row['characters'])}  "
            f"{escape(row['title'])}",
            highlight=False,
            soft_wrap=True,
        )


@conversations_app.command("show")
def show_cmd(
    conversation_id: Annotated[str, typer.Argument(help="A conversation id (or a unique prefix).")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """A conversation's transcript (Markdown), rebuilt from its logged turns."""
    from doctune.stages import converse as stage

    try:
        _cfg, ws = load_context(config, set_, workspace)
        print(stage.show_conversation(ws, conversation_id))
    except _errors() as exc:
        raise fail(str(exc)) from None
