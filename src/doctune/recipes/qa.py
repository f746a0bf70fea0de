"""The QA family of recipes: grounded question/answer items per chunk (``qa``), across chunks (``multihop``), and
reworded items (``rephrase``).

Their generation writes ``QAItem`` artifacts (``qa``, ``multihop``, ``rephrased``; see
``doctune.generate.qa_runs``) that the QA curation (semantic dedup, clusters, the rephrased and mirror splits)
turns into the ``dataset`` artifact. The same curation writes ``dataset_qa``: every curated item in the seam's shape
(:meth:`QARecipe.item_example`: chat messages plus typed fields), which `doctune export/train/eval --recipe qa`
read like any recipe's examples; :meth:`QARecipe.score_reply` grades a reply with the deterministic grader.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from doctune.recipes.base import GateSpec, Recipe
from doctune.records import DatasetItem, Example

if TYPE_CHECKING:
    from doctune.config import DoctuneConfig
    from doctune.stages import StageResult
    from doctune.workspace import Workspace


class QAFields(BaseModel):
    """The typed fields of a QA example (the rest of ``QAItem`` stays in the ``dataset`` artifact)."""

    model_config = ConfigDict(extra="forbid")

    item_id: str
    kind: str
    category: str
    difficulty: int
    evaluation_criteria: str
    chunk_ids: list[str]
    source: str


class QARecipe(Recipe):
    name = "qa"
    description = "Grounded question/answer items, one request per chunk, each checked against its citation."
    inputs = ("chunks", "documents", "summaries")
    config_sections = ("generate", "models.generator", "models.judge")
    fields_model = QAFields
    splits = ("train", "eval", "rephrased_eval", "rephrased_train", "mirror", "manual")
    metrics = ("accuracy", "token_f1", "embedding_similarity")
    gate = GateSpec(metric="accuracy", split="rephrased_train")
    writes_examples = False
    dataset_recipe = "qa"  # qa, multihop and rephrase items are curated together into dataset_qa
    artifact: ClassVar[str] = "qa"

    def generate(
        self, config: DoctuneConfig, workspace: Workspace, options: Mapping[str, Any], progress: bool = True
    ) -> StageResult:
        from doctune.generate import qa_runs

        return qa_runs.run_qa(config, workspace, progress)

    def item_example(self, item: DatasetItem, system_prompt: str | None = None) -> Example:
        """A curated QA item as a chat example (system prompt, question, answer) with its typed fields."""
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        messages += [{"role": "user", "content": item.question}, {"role": "assistant", "content": item.answer}]
        fields = QAFields(
            item_id=item.item_id,
            kind=item.kind,
            category=item.category,
            difficulty=item.difficulty,
            evaluation_criteria=item.evaluation_criteria,
            chunk_ids=item.chunk_ids,
            source=item.source,
        )
        example = self.example(item.item_id, item.unit_id, messages, fields, item.doc_ids)
        return example.model_copy(update={"split": item.split})

    def score_reply(self, example: Example, reply: str) -> dict[str, float]:
        """``accuracy`` (the deterministic grader's verdict: 1, 0.5 or 0; see ``doctune.evaluate.grader``, checked
        in tests/test_grader.py) and ``token_f1`` of ``reply`` against the reference answer."""
        from doctune.evaluate.grader import DeterministicGrader
        from doctune.evaluate.metrics import token_f1

        question = next(m.content for m in reversed(example.prompt_messages) if m.role == "user")
        verdict = DeterministicGrader().grade_text(question, example.target, reply)
        return {"accuracy": verdict.score, "token_f1": token_f1(reply, example.target)}


class MultihopRecipe(QARecipe):
    name = "multihop"
    description = "Question/answer items that need several chunks at once, over a bounded set of chunk groups."
    config_sections = ("generate", "multihop", "models.generator", "models.embedder", "models.judge")
    artifact = "multihop"

    def generate(
        self, config: DoctuneConfig, workspace: Workspace, options: Mapping[str, Any], progress: bool = True
    ) -> StageResult:
        from doctune.generate import qa_runs

        return qa_runs.run_multihop(config, workspace, progress)


class RephraseRecipe(QARecipe):
    name = "rephrase"
    description = "A reworded question and answer for each item of rephrase.source (same meaning and criteria)."
    inputs = ("qa",)
    config_sections = ("rephrase", "generate.max_attempts", "models.rephraser")
    artifact = "rephrased"

    def generate(
        self, config: DoctuneConfig, workspace: Workspace, options: Mapping[str, Any], progress: bool = True
    ) -> StageResult:
        from doctune.generate import qa_runs

        return qa_runs.run_rephrase(config, workspace, progress)
