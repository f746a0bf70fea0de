"""The recipe seam: what turns input artifacts into training examples, and how those examples are judged.

A recipe declares, as class attributes, everything the generic stages need to handle its examples without
knowing which recipe made them:

* ``inputs``: the artifacts it reads (``speeches``, ``chunks``, ...) and ``config_sections`` its output depends on;
* ``fields_model``: the typed fields of its examples (validated by :meth:`Recipe.check`); every example is
  ``messages`` (chat turns, the last assistant turn is the target) plus those fields;
* ``check``: the checks an example must pass (curation drops failures and reports why);
* ``split_examples``: its split policy (e.g. whole scenes held out);
* ``metrics`` and ``gate``: what evaluation computes (names from ``doctune.evaluate``) and what promotion needs;
* ``adapter_field``: a field that names one adapter per value (``character``), or None for one adapter in all.

``build_examples`` makes the examples; the ``generate`` stage writes them as ``examples_<name>``. Recipes whose
output is not ``Example`` rows (the QA family writes ``QAItem`` artifacts) override :meth:`Recipe.generate`; their
own curation then writes ``dataset_<dataset_owner>`` as ``Example`` rows, which export, train, eval and promote
read like any other recipe's.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from doctune.records import Example

if TYPE_CHECKING:
    from doctune.config import DoctuneConfig
    from doctune.stages import StageResult
    from doctune.workspace import Workspace

log = logging.getLogger(__name__)


class GateSpec(BaseModel):
    """A recipe's default promotion gate: ``metric`` on ``split``, tuned vs base, by at least ``min_margin``."""

    model_config = ConfigDict(extra="forbid")

    metric: str
    split: str
    min_margin: float = 0.0
    higher_is_better: bool = True


class NoFields(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class SideArtifact:
    """An artifact a recipe makes besides its examples (the knowledge graph's nodes, a wiki's articles): written by
    the generate stage in the same run, before ``examples_<recipe>``, with the recipe's inputs."""

    name: str
    rows: Sequence[BaseModel]
    row_type: type[BaseModel]
    errors: list[dict[str, str]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecipeOutput:
    """What :meth:`Recipe.build_examples` made: examples, inputs it could not use (with reasons), counts, and any
    side artifacts (:class:`SideArtifact`)."""

    examples: list[Example]
    errors: list[dict[str, str]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    artifacts: list[SideArtifact] = field(default_factory=list)


class Recipe:
    """Base class of every recipe (see the module docstring). Subclasses set the class attributes."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    inputs: ClassVar[tuple[str, ...]] = ()
    config_sections: ClassVar[tuple[str, ...]] = ()
    fields_model: ClassVar[type[BaseModel]] = NoFields
    splits: ClassVar[tuple[str, ...]] = ("train", "eval")
    metrics: ClassVar[tuple[str, ...]] = ("perplexity",)
    gate: ClassVar[GateSpec] = GateSpec(metric="perplexity", split="eval", higher_is_better=False)
    adapter_field: ClassVar[str | None] = None
    #: False for recipes whose generate step writes their own artifacts (not ``examples_<name>``)
    writes_examples: ClassVar[bool] = True
    #: the recipe whose ``dataset_<name>`` holds this recipe's curated examples (the QA family shares ``qa``'s)
    dataset_recipe: ClassVar[str | None] = None

    @property
    def dataset_owner(self) -> str:
        """The name in ``dataset_<name>``, ``training_runs_<name>`` and the registry labels of this recipe's models."""
        return self.dataset_recipe or self.name

    # -- making examples ------------------------------------------------------------------
    def build_examples(
        self, config: DoctuneConfig, workspace: Workspace, options: Mapping[str, Any], progress: bool = True
    ) -> RecipeOutput:
        raise NotImplementedError(f"recipe {self.name!r} does not build examples")

    def generate(
        self, config: DoctuneConfig, workspace: Workspace, options: Mapping[str, Any], progress: bool = True
    ) -> StageResult:
        """Only for recipes with ``writes_examples = False``: run their own generation and write their artifacts."""
        raise NotImplementedError(f"recipe {self.name!r} writes examples_{self.name}; the generate stage does that")

    def example(
        self,
        unit_id: str,
        group: str,
        messages: Sequence[Mapping[str, str]],
        fields: BaseModel | Mapping[str, Any],
        doc_ids: Sequence[str] = (),
    ) -> Example:
        """An :class:`Example` of this recipe, its id a hash of its content (stable across reruns)."""
        values = fields.model_dump(mode="json") if isinstance(fields, BaseModel) else dict(fields)
        fields_json = json.dumps(self.fields_model.model_validate(values).model_dump(mode="json"), sort_keys=True)
        msgs = [{"role": m["role"], "content": m["content"]} for m in messages]
        digest = hashlib.sha256(json.dumps([self.name, unit_id, msgs, fields_json]).encode()).hexdigest()[:16]
        return Example(
            example_id=f"{self.name}-{digest}",
            recipe=self.name,
            unit_id=unit_id,
            group=group,
            doc_ids=list(doc_ids),
            messages=msgs,
            fields=fields_json,
        )

    # -- curation -------------------------------------------------------------------------
    def check(self, example: Example) -> list[str]:
        """Names of the checks ``example`` fails (empty: it passes). Subclasses extend this."""
        failed = []
        try:
            self.fields_model.model_validate(example.field_values())
        except (ValidationError, ValueError):
            failed.append("fields_invalid")
        roles = [m.role for m in example.messages]
        if "assistant" not in roles or not example.target.strip():
            failed.append("empty_target")
        return failed

    def split_examples(self, examples: Sequence[Example], config: DoctuneConfig) -> dict[str, list[Example]]:
        """The split policy: split name -> examples. Default: whole groups, every 5th group (by hash) to eval."""
        out: dict[str, list[Example]] = {s: [] for s in self.splits}
        for ex in examples:
            bucket = int(hashlib.sha256(ex.group.encode()).hexdigest(), 16) % 5
            out["eval" if bucket == 0 else "train"].append(ex)
        return out

    def adapter_key(self, example: Example) -> str | None:
        """The adapter an example trains (the value of ``adapter_field``), or None when there is one adapter."""
        if self.adapter_field is None:
            return None
        return str(example.field_values().get(self.adapter_field, ""))

    # -- evaluation -----------------------------------------------------------------------
    def score_reply(self, example: Example, reply: str) -> dict[str, float]:
        """Recipe-specific per-example scores of a model's ``reply`` (names in ``metrics``); default none."""
        return {}

    def __repr__(self) -> str:
        return f"<recipe {self.name}>"
