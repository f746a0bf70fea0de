"""generate: a recipe's input artifacts -> its training examples (``doctune generate <recipe>``).

The recipe is found by name (``doctune.recipes``: built-ins, entry points, ``recipes:`` in the config). A recipe
that makes ``Example`` rows has them written here as ``examples_<recipe>``, with the inputs it could not use
recorded as errors; the QA family (``qa``, ``multihop``, ``rephrase``) runs its own generation
(``doctune.generate.qa_runs``) and writes item artifacts. Either way the artifact records the hashes of the
recipe's input artifacts, so a rerun after an input changed is detected as stale.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

from doctune.config import DoctuneConfig
from doctune.recipes import get_recipe
from doctune.records import Example
from doctune.stages import NothingUsable, StageResult
from doctune.workspace import Workspace

log = logging.getLogger(__name__)


def run(
    config: DoctuneConfig,
    workspace: Workspace,
    recipe: str = "qa",
    progress: bool = True,
    options: Mapping[str, Any] | None = None,
) -> StageResult:
    """Make the examples of ``recipe``."""
    chosen = get_recipe(recipe, config)
    if not chosen.writes_examples:
        return chosen.generate(config, workspace, options or {}, progress)
    run_ = workspace.start_run(f"generate {chosen.name}", config)
    out = chosen.build_examples(config, workspace, options or {}, progress)
    outputs = {}
    for side in out.artifacts:  # e.g. the knowledge graph's nodes and edges, before the examples made from them
        side_rec = run_.write_artifact(
            side.name, side.rows, side.row_type, inputs=chosen.inputs, errors=side.errors, stats=side.stats
        )
        outputs[side.name] = str(workspace.root / side_rec.path)
    artifact = f"examples_{chosen.name}"
    per_key = Counter(chosen.adapter_key(e) or "all" for e in out.examples)
    stats = {"recipe": chosen.name, "per_adapter": dict(per_key), **out.stats}
    rec = run_.write_artifact(artifact, out.examples, Example, inputs=chosen.inputs, errors=out.errors, stats=stats)
    if not out.examples:
        first = f" (first problem: {out.errors[0].get('reason', '')})" if out.errors else ""
        raise NothingUsable(f"generate {chosen.name}: no example was made{first}")
    return StageResult(
        stage=f"generate {chosen.name}",
        outputs={**outputs, artifact: str(workspace.root / rec.path)},
        counts={"examples": len(out.examples), "errors": len(out.errors)},
        errors=out.errors,
        stats=stats,
    )


def run_qa(config: DoctuneConfig, workspace: Workspace, progress: bool = True) -> StageResult:
    return run(config, workspace, "qa", progress)


def run_multihop(config: DoctuneConfig, workspace: Workspace, progress: bool = True) -> StageResult:
    return run(config, workspace, "multihop", progress)


def run_rephrase(config: DoctuneConfig, workspace: Workspace, progress: bool = True) -> StageResult:
    return run(config, workspace, "rephrase", progress)
