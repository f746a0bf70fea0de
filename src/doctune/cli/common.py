"""The app, shared options and helpers of the command line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from typer.core import TyperGroup

from doctune.config import DEFAULT_CONFIG_FILE, ConfigError, DoctuneConfig, load_config
from doctune.execution import activate
from doctune.progress import set_progress_root
from doctune.sandbox import SandboxUnavailable
from doctune.stages import NothingUsable, StageResult
from doctune.workspace import StaleArtifactError, Workspace


class DoctuneGroup(TyperGroup):
    """The top-level command group: any error a command did not handle itself ends as one ``error:`` line naming the
    command and the reason, with exit code 1 (``-v`` also prints the traceback), never as a raw traceback."""

    def invoke(self, ctx: click.Context) -> object:
        state.command = command_names(self, ctx)
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:
            raise fail(describe_error(exc, ctx.invoked_subcommand)) from None


def command_names(group: click.Group, ctx: click.Context) -> str:
    """The names of the command being run, without its arguments ("curate split"; never a path the user typed)."""
    words = [*getattr(ctx, "_protected_args", getattr(ctx, "protected_args", [])), *ctx.args]
    names: list[str] = []
    command: click.Command | None = group
    for word in words:
        # duck-typed: typer's groups are not always click.Group instances
        command = command.get_command(ctx, word) if hasattr(command, "get_command") else None
        if command is None:
            break
        names.append(word)
    return " ".join(names)


app = typer.Typer(
    cls=DoctuneGroup,
    add_completion=False,
    no_args_is_help=True,
    help="Turn documents into training data and a tuned model.",
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
    verbose: bool = False
    workspace: Path | None = None
    config: Path | None = None
    overrides: list[str] = []  # noqa: RUF012
    progress: bool = True
    command: str = ""  # the command's names ("curate split"): labels progress files


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
    state.verbose = verbose


def load_context(
    config: Path | None, overrides: list[str] | None, workspace: Path | None
) -> tuple[DoctuneConfig, Workspace]:
    extra = list(state.overrides) + list(overrides or [])
    cfg = load_config(config or state.config, extra, workspace=workspace or state.workspace)
    set_progress_root(Path(cfg.workspace), state.command or None)
    activate(cfg.execution)  # where this command's jobs run (local threads, or Ray)
    return cfg, Workspace(cfg.workspace)


#: errors whose message already says what and why, for the user (no traceback hint)
EXPECTED_ERRORS: tuple[type[Exception], ...] = (ConfigError, StaleArtifactError, NothingUsable, SandboxUnavailable)


def describe_error(exc: BaseException, command: str | None) -> str:
    """One line: the command, then the error's own message (its first line); a hint to -v for unexpected errors."""
    if state.verbose:
        err_console.print_exception()
    if isinstance(exc, EXPECTED_ERRORS):
        return str(exc)
    lines = str(exc).strip().splitlines() or [""]
    what = f"{type(exc).__name__}: {lines[0]}".rstrip(": ")
    prefix = f"{command}: " if command else ""
    hint = "" if state.verbose else " (run with -v for the traceback)"
    return f"{prefix}{what}{hint}"


def fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code=1)


def print_result(result: StageResult) -> None:
    counts = ", ".join(f"{v} {k}" for k, v in result.counts.items())
    console.print(f"[bold green]{result.stage}[/]: {counts}")
    shown = 10
    for err in result.errors[:shown]:
        where = err.get("source_path") or err.get("unit_id") or err.get("example_id") or "?"
        console.print(f"  [yellow]skipped[/] {escape(where)}: {escape(err.get('reason', ''))}")
    if len(result.errors) > shown:
        console.print(f"  [yellow]... and {len(result.errors) - shown} more[/] (all of them: `doctune status`)")
    if "outcomes" in result.stats:
        console.print("  outcomes: " + ", ".join(f"{k} {v}" for k, v in result.stats["outcomes"].items()))
    if "verified_citation_share" in result.stats:
        console.print(f"  items with verified citations: {result.stats['verified_citation_share']:.1%}")
    if result.stats.get("grounding_checked"):
        s = result.stats
        console.print(
            f"  grounded: {s['grounded_share']:.1%} of {s['grounding_checked']} items whose quotes were found"
            + (f" (dropped: {', '.join(f'{k} {v}' for k, v in s['dropped'].items())})" if s["dropped"] else "")
        )
    if "final_loss" in result.stats:
        s = result.stats
        final = f"{s['final_loss']:.3f}" if s["final_loss"] is not None else "not logged"
        evals = ", ".join(f"{k} {v:.3f}" for k, v in (s.get("eval_losses") or {}).items())
        console.print(
            f"  final train loss {final}"
            + (f"; eval loss {evals}" if evals else "")
            + f"; {s.get('tokens_per_second') or 0:.0f} tokens/s"
        )
    if result.stats.get("llm"):
        u = result.stats["llm"]
        console.print(
            f"  LLM calls {u['calls']} (cached {u['cache_hits']}, failed {u['failures']}), "
            f"tokens {u['prompt_tokens']} in / {u['completion_tokens']} out"
        )
    for name, path in result.outputs.items():
        console.print(f"  {name} -> {path}")


def run_stage(fn, config: Path | None, overrides: list[str] | None, workspace: Path | None, **kwargs) -> None:
    try:
        cfg, ws = load_context(config, overrides, workspace)
        print_result(fn(cfg, ws, progress=state.progress, **kwargs))
    except EXPECTED_ERRORS as exc:
        raise fail(str(exc)) from None
