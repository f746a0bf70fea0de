"""curate examples: ``examples_<recipe>`` -> ``dataset_<recipe>`` (``doctune curate examples RECIPE``).

Works for any recipe that writes ``Example`` rows: exact duplicates and examples failing the recipe's checks are
dropped (recorded as the artifact's errors, with reasons), the rest split by the recipe's split policy (see
:mod:`doctune.curate.examples`). The stats give the rows per split and per adapter (``Recipe.adapter_key``).
Human review decisions (the ``reviews`` artifact, :mod:`doctune.curate.reviews`) come first: rejected examples are
dropped, edits applied, and approved or edited examples kept whatever the recipe's checks say.
"""

from __future__ import annotations

import logging

from doctune.config import DoctuneConfig
from doctune.curate.examples import curate_examples
from doctune.curate.review_apply import apply_reviews_to_examples, review_counts
from doctune.curate.reviews import curation_reviews
from doctune.recipes import Recipe, get_recipe
from doctune.records import Example
from doctune.stages import NothingUsable, StageResult
from doctune.workspace import Workspace

log = logging.getLogger(__name__)


def run(config: DoctuneConfig, workspace: Workspace, recipe_name: str, progress: bool = True) -> StageResult:
    """Curate the examples of ``recipe_name`` into its dataset (train / eval / ... by the recipe's policy)."""
    recipe = get_recipe(recipe_name, config)
    if not recipe.writes_examples:
        return _curate_own_items(config, workspace, recipe, progress)
    source = f"examples_{recipe.name}"
    target = f"dataset_{recipe.name}"
    examples = workspace.read_rows(source, Example, config)
    inputs, rejected, vouched, counts = [source], [], set(), {}
    # human review decisions win: rejected examples dropped, edits applied, approved ones pass the checks
    if (reviews := curation_reviews(workspace, config, recipe.name)) is not None:
        before = {ex.example_id for ex in examples}
        examples, rejected, vouched = apply_reviews_to_examples(examples, reviews)
        counts = review_counts(reviews, before, examples, rejected)
        inputs.append("reviews")
    stage = f"curate examples {recipe.name}"
    run_ = workspace.start_run(stage, config)
    kept, dropped, stats = curate_examples(recipe, examples, config, vouched=vouched)
    dropped = [*rejected, *dropped]
    if counts:
        stats["reviews"] = counts
    rows = [ex for members in kept.values() for ex in members]
    rec = run_.write_artifact(target, rows, Example, inputs=inputs, errors=dropped, stats=stats)
    if not kept.get("train"):
        raise NothingUsable(f"{stage}: no training example left of {len(examples)} (see `doctune status` errors)")
    counts = {**{f"{split}": len(members) for split, members in kept.items()}, **counts}
    counts["dropped"] = len(dropped)
    counts["left out by the split"] = stats["not_in_split"]
    return StageResult(
        stage=stage,
        outputs={target: str(workspace.root / rec.path)},
        counts=counts,
        errors=dropped,
        stats=stats,
    )


def _curate_own_items(config: DoctuneConfig, workspace: Workspace, recipe: Recipe, progress: bool) -> StageResult:
    """A recipe that writes its own item artifacts (the QA family) is curated by its own curation, which writes
    ``dataset_<owner>`` as Example rows: semantic dedup, clusters, then the splits (`doctune curate`)."""
    from doctune.stages import curate

    log.info(
        "curate examples %s: the QA curation (dedup, cluster, split) writes dataset_%s",
        recipe.name,
        recipe.dataset_owner,
    )
    for step in (curate.run_dedup, curate.run_cluster):
        step(config, workspace, progress)
    return curate.run_split(config, workspace, progress)
