"""The generate command: ``doctune generate RECIPE``."""

from __future__ import annotations

from typing import Annotated

import typer

from doctune.cli.common import ConfigOpt, SetOpt, WorkspaceOpt, app, run_stage
from doctune.recipes import BUILTIN

RECIPE_HELP = (
    "The recipe, by name: "
    + ", ".join(sorted(BUILTIN))
    + ', or one named in the config\'s `recipes:` list ("module:Class") or a `doctune.recipes` entry point.'
)


@app.command("generate")
def generate_cmd(
    recipe: Annotated[str, typer.Argument(help=RECIPE_HELP, show_default=False)],
    character: Annotated[
        list[str] | None,
        typer.Option(
            "--character",
            help="character recipe: make examples for this character (canonical name as `doctune characters` lists "
            "it; repeatable). Same as --set 'character.characters=[NAME]'.",
        ),
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Turn the recipe's input artifacts into training examples.

    \b
    qa         QA items per chunk, checked against their citation -> qa
    multihop   QA items that need several chunks at once -> multihop
    rephrase   a reworded item per item of rephrase.source -> rephrased
    character  per speech: character card + preceding speeches -> the
               real speech (`doctune ingest` a play first)
               -> examples_character
    kg         entities and relations per chunk (each relation checked
               against its cited span), canonical graph, communities ->
               kg_* artifacts, kg/graph.{graphml,json,html}; path
               questions with and without graph context -> examples_kg
    wiki       an article per important entity, every sentence cited and
               verified, [[links]], a spider within wiki.max_articles ->
               wiki_articles, wiki/index.html (run `generate kg` first)
    mindmap    per document an outline whose points cite source spans,
               grown to cover every chunk -> mindmap_nodes,
               mindmap/*.md (markmap), mindmap/index.html
    dialogue   brainstorming dialogues between dialogue.personas, every
               claim cited -> examples_dialogue, dialogues/dialogues.md
    code       per function/method of `ingest --as code` repositories:
               docstring -> code, explain, write a test, fix a bug;
               tests run in an OS-level sandbox (refuses without
               one), mutants nothing catches dropped -> examples_code
    other      -> examples_<recipe>

    Next: `doctune curate examples RECIPE` (for the QA family it runs `doctune curate`).
    """
    from doctune.stages import generate as stage

    overrides = list(set_ or [])
    if character:
        names = ",".join('"' + c.replace('"', "") + '"' for c in character)
        overrides.append(f"character.characters=[{names}]")
    run_stage(stage.run, config, overrides, workspace, recipe=recipe)
