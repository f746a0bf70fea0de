"""The knowledge graph recipe (``doctune generate kg``): entities and relations per chunk, checked against their
citations, merged into one graph with communities, and training examples over its paths.

Generation (:meth:`KGRecipe.build_examples`):

1. extraction per chunk (:mod:`doctune.knowledge.extract`): ``span`` (what ``auto`` gives a small local model:
   names and relations found by written rules, the model only labels relations, its label checked against the
   sentence) or ``one_call`` (the model extracts entities and relations as JSON); a relation is kept only when its
   cited span names both ends and the grounding verifier accepts it. Every chunk ends with an outcome and a reason;
2. canonical names (:mod:`doctune.knowledge.canonical`: case, plurals, aliases, acronyms, person names,
   embedding-close names; every merge listed), edges with all their citations, Louvain communities with a summary
   each (:mod:`doctune.knowledge.graph`);
3. files for people in ``<workspace>/kg/``: ``graph.graphml`` (edges carry a ``citation``), ``graph.json``,
   ``graph.html`` (interactive);
4. examples: questions over one- and two-hop paths (:mod:`doctune.knowledge.paths`), each asked twice: alone, and
   with the graph context that :class:`~doctune.knowledge.context.GraphIndex` gives for it ("graph as context").

Evaluation: ``accuracy`` (:meth:`KGRecipe.score_reply`): the reply names a right answer entity and no other entity
of the graph except those of the question's path; the grader is checked on the eval examples before its scores are
reported (the reference must pass; the question echoed, "I don't know", a wrong entity and the context copied back
must fail). :meth:`KGRecipe.extra_report` answers "does graph context help?": accuracy with and without the
context, base and tuned, with CIs and the paired difference.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from doctune.knowledge.context import GraphIndex, with_context
from doctune.knowledge.paths import PathQuestion, path_questions
from doctune.knowledge.rows import KGCommunity, KGEdge, KGMention, KGMerge, KGNode, KGRelation
from doctune.recipes.base import GateSpec, Recipe, RecipeOutput, SideArtifact
from doctune.records import Chunk, Document, Example

if TYPE_CHECKING:
    from doctune.config import DoctuneConfig
    from doctune.workspace import Workspace

log = logging.getLogger(__name__)

IDK = "I don't know."


class KGFields(BaseModel):
    """The typed fields of a kg example."""

    model_config = ConfigDict(extra="forbid")

    path_id: str = Field(description="The path question; its two examples (with and without context) share it.")
    hops: int
    direction: str
    context: bool = Field(description="Whether the prompt gives the graph context.")
    answers: list[str] = Field(description="node_ids of the right answers.")
    answer_names: list[str] = Field(description="Names and aliases of the right answers.")
    path_nodes: list[str]
    edge_ids: list[str]
    chunk_ids: list[str]
    context_edges: list[str] = Field(default_factory=list, description="edge_ids given as context.")
    answer_in_context: bool = False


def selected_chunks(config: DoctuneConfig, workspace: Workspace) -> tuple[list[Document], list[Chunk]]:
    """The documents and chunks ``kg.documents`` and ``kg.max_chunks`` select."""
    docs = workspace.read_rows("documents", Document, config)
    chunks = workspace.read_rows("chunks", Chunk, config)
    wanted = config.kg.documents
    if wanted:
        docs = [d for d in docs if any(w in d.source_path for w in wanted)]
    ids = {d.doc_id for d in docs}
    chunks = [c for c in chunks if c.doc_id in ids]
    if config.kg.max_chunks is not None:
        chunks = chunks[: config.kg.max_chunks]
    return docs, chunks


def _names_of(nodes: Mapping[str, KGNode], node_ids: Sequence[str]) -> list[str]:
    return [form for n in node_ids if n in nodes for form in [nodes[n].name, *nodes[n].aliases]]


class KGRecipe(Recipe):
    name = "kg"
    description = "A knowledge graph of the documents (relations checked against citations) and path questions."
    inputs = ("documents", "chunks")
    config_sections = ("kg", "models.generator", "models.embedder")
    fields_model = KGFields
    metrics = ("perplexity", "accuracy")
    gate = GateSpec(metric="accuracy", split="eval", higher_is_better=True)

    def __init__(self) -> None:
        self._index: GraphIndex | None = None
        self.grader_check: dict[str, Any] = {"passed": False, "reason": "not checked"}

    # -- generation -----------------------------------------------------------------------
    def build_examples(
        self, config: DoctuneConfig, workspace: Workspace, options: Mapping[str, Any], progress: bool = True
    ) -> RecipeOutput:
        from doctune.knowledge.build import build_graph_artifacts

        docs, chunks = selected_chunks(config, workspace)
        built = build_graph_artifacts(config, workspace, docs, chunks, progress)
        index = GraphIndex(built.nodes, built.edges)
        questions = path_questions(index, config.kg.max_two_hop)
        examples = [ex for q in questions for ex in self.path_examples(q, index, config)]
        stats = {
            **built.stats,
            "questions": dict(Counter(f"{q.hops}-hop {q.direction}" for q in questions)),
            "examples_with_context": sum(1 for e in examples if e.field_values()["context"]),
        }
        artifacts = [
            SideArtifact("kg_mentions", built.mentions, KGMention),
            SideArtifact("kg_relations", built.relations, KGRelation, errors=built.rejected),
            SideArtifact("kg_nodes", built.nodes, KGNode),
            SideArtifact("kg_edges", built.edges, KGEdge),
            SideArtifact("kg_communities", built.communities, KGCommunity),
            SideArtifact("kg_merges", built.merges, KGMerge),
        ]
        return RecipeOutput(examples=examples, errors=built.errors, stats=stats, artifacts=artifacts)

    def path_examples(self, q: PathQuestion, index: GraphIndex, config: DoctuneConfig) -> list[Example]:
        """The question alone, and the question after its graph context."""
        cfg = config.kg
        system = {"role": "system", "content": cfg.system_prompt}
        chunk_ids = sorted({c.chunk_id for c in q.citations})
        doc_ids = sorted({c.doc_id for c in q.citations})
        ctx_edges = index.context_edges(q.question, cfg.context_edges)
        given = {n for e in ctx_edges for n in (e.source, e.target)}
        base = {
            "path_id": q.path_id,
            "hops": q.hops,
            "direction": q.direction,
            "answers": q.answers,
            "answer_names": _names_of(index.nodes, q.answers),
            "path_nodes": q.path_nodes,
            "edge_ids": q.edge_ids,
            "chunk_ids": chunk_ids,
        }
        plain = [system, {"role": "user", "content": q.question}, {"role": "assistant", "content": q.answer}]
        user = with_context(q.question, index.format_context(ctx_edges))
        framed = [system, {"role": "user", "content": user}, {"role": "assistant", "content": q.answer}]
        fields_plain = KGFields(**base, context=False)
        fields_ctx = KGFields(
            **base,
            context=True,
            context_edges=[e.edge_id for e in ctx_edges],
            answer_in_context=bool(set(q.answers) & given) and set(q.edge_ids) <= {e.edge_id for e in ctx_edges},
        )
        return [
            self.example(q.path_id, q.group, plain, fields_plain, doc_ids),
            self.example(q.path_id, q.group, framed, fields_ctx, doc_ids),
        ]

    def split_examples(self, examples: Sequence[Example], config: DoctuneConfig) -> dict[str, list[Example]]:
        """Whole groups (a path's first relation) to eval with probability ``kg.eval_share`` (by hash and seed)."""
        out: dict[str, list[Example]] = {s: [] for s in self.splits}
        for ex in examples:
            digest = hashlib.sha256(f"{config.kg.seed}:{ex.group}".encode()).hexdigest()
            out["eval" if int(digest, 16) % 1000 < config.kg.eval_share * 1000 else "train"].append(ex)
        return out

    # -- evaluation -----------------------------------------------------------------------
    def prepare_eval(self, config: DoctuneConfig, workspace: Workspace, examples: Sequence[Example]) -> None:
        """The graph (to recognise every entity a reply names) and the grader's own check on the eval examples."""
        nodes = workspace.read_rows("kg_nodes", KGNode, config)
        edges = workspace.read_rows("kg_edges", KGEdge, config)
        self._index = GraphIndex(nodes, edges)
        self.grader_check = self.check_grader([e for e in examples if e.split == self.gate.split])

    def accuracy(self, example: Example, reply: str) -> float:
        """1.0 when ``reply`` names a right answer and no other entity of the graph outside the question's path."""
        values = example.field_values()
        answers = set(values["answers"])
        if self._index is not None:
            named = set(self._index.find_nodes(reply))
            allowed = answers | set(values["path_nodes"])
            return 1.0 if named & answers and not (named - allowed) else 0.0
        fallback = GraphIndex(
            [KGNode(node_id="answer", name=values["answer_names"][0], type="other", aliases=values["answer_names"])],
            [],
        )
        return 1.0 if fallback.find_nodes(reply) else 0.0

    def score_reply(self, example: Example, reply: str) -> dict[str, float]:
        return {"accuracy": self.accuracy(example, reply)}

    def check_grader(self, examples: Sequence[Example]) -> dict[str, Any]:
        """The grader on answers whose verdict is known: the reference must score 1; the question echoed, "I don't
        know", another entity of the answer's type, and the whole context copied back must score 0."""
        if self._index is None or not examples:
            return {"passed": False, "reason": "no graph or no example to check on", "n": 0}
        index = self._index
        by_type: dict[str, list[str]] = {}
        for node in index.nodes.values():
            by_type.setdefault(node.type, []).append(node.node_id)
        failures: list[dict[str, str]] = []
        counts = Counter()
        for ex in examples:
            values = ex.field_values()
            prompt = next(m.content for m in reversed(ex.prompt_messages) if m.role == "user")
            question = prompt.rsplit("Question: ", 1)[-1]  # without the context (a copied context is its own case)
            cases = [("reference", ex.target, 1.0), ("echo", question, 0.0), ("dont_know", IDK, 0.0)]
            answer_type = index.nodes[values["answers"][0]].type if values["answers"][0] in index.nodes else ""
            exclude = set(values["answers"]) | set(values["path_nodes"])
            wrong = next((n for n in by_type.get(answer_type, []) if n not in exclude), None)
            if wrong is not None:
                cases.append(("wrong_entity", f"{index.nodes[wrong].name}.", 0.0))
            if values["context"] and set(index.find_nodes(prompt)) - exclude:  # the context names a wrong entity
                cases.append(("context_copied", prompt, 0.0))
            for kind, reply, expected in cases:
                counts[kind] += 1
                if self.accuracy(ex, reply) != expected:
                    failures.append({"example_id": ex.example_id, "case": kind, "reply": reply[:200]})
        total = sum(counts.values())
        agreement = 1 - len(failures) / total if total else 0.0
        return {
            "passed": agreement >= 0.95,
            "agreement": round(agreement, 4),
            "cases": dict(counts),
            "failures": failures[:20],
            "n": len(examples),
            "rule": "the reference must score 1; echo, I don't know, a wrong entity, the context copied must score 0",
        }

    def extra_report(
        self, config: DoctuneConfig, workspace: Workspace, examples: Sequence[Example], entries: Sequence[Any], benches
    ) -> dict[str, Any]:
        """Does graph context help? Accuracy with and without it, base and tuned, on the same eval paths."""
        from doctune.evaluate.graph_context import graph_context_report

        return graph_context_report(self, config, examples, entries, benches)

    def extra_markdown(self, extra: dict[str, Any]) -> str:
        from doctune.evaluate.graph_context import graph_context_markdown

        check = extra.get("grader_check") or {}
        head = f"Does graph context help? (accuracy on {extra.get('split')}; grader check: "
        head += f"{'passed' if check.get('passed') else 'FAILED'}, agreement {check.get('agreement')})"
        return head + "\n\n" + graph_context_markdown(extra)
