"""Questions over one- and two-hop paths of the knowledge graph, each with the citations of its path.

Right by construction: the question is a statement of the graph with one entity left out, the answer is that
entity, and every relation on the path carries the source spans that state it. One hop asks for either end of
a relation ("Complete from the documents: S was developed at ___."); two hops chain two relations through an
entity the question does not name ("R is an implementation of X, and X was developed at ___."). When several
entities complete the same statement, each is a right answer.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field

from doctune.knowledge.context import GraphIndex
from doctune.knowledge.names import name_key
from doctune.knowledge.rows import KGEdge
from doctune.records import Citation

BLANK = "___"


@dataclass
class PathQuestion:
    """A question whose answer is an entity of the graph, and the path it rests on."""

    path_id: str
    hops: int
    direction: str  # "tail" (the target is asked) | "head" (the source is asked)
    question: str
    answer: str  # the target text: the answer entity's name (two hops: and the path)
    answers: list[str]  # node_ids that are right answers
    path_nodes: list[str]
    edge_ids: list[str]
    citations: list[Citation] = field(default_factory=list)

    @property
    def group(self) -> str:
        """The split group: the path's first relation, so that both questions of a relation (its head and its tail)
        land in one split. A two-hop question shares its second relation with that relation's own questions, which
        may be in the other split (the evaluation report says so)."""
        return self.edge_ids[0]


def _pid(*parts: str) -> str:
    return "path-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:12]


def _complete(statement: str) -> str:
    return f"Complete from the documents: {statement}"


def one_hop_questions(index: GraphIndex) -> list[PathQuestion]:
    """For each relation, the tail question and the head question (skipped when the question names its answer)."""
    tails: dict[tuple[str, str], set[str]] = defaultdict(set)
    heads: dict[tuple[str, str], set[str]] = defaultdict(set)
    for e in index.edges:
        tails[(e.source, name_key(e.relation))].add(e.target)
        heads[(e.target, name_key(e.relation))].add(e.source)
    out: list[PathQuestion] = []
    for e in index.edges:
        src, tgt = index.names[e.source], index.names[e.target]
        for direction, question, answer_id, answers in (
            ("tail", f"{src} {e.relation} {BLANK}.", e.target, tails[(e.source, name_key(e.relation))]),
            ("head", f"{BLANK} {e.relation} {tgt}.", e.source, heads[(e.target, name_key(e.relation))]),
        ):
            if set(index.find_nodes(question)) & answers:
                continue  # the question gives its answer away
            out.append(
                PathQuestion(
                    path_id=_pid(e.edge_id, direction),
                    hops=1,
                    direction=direction,
                    question=_complete(question),
                    answer=f"{index.names[answer_id]}.",
                    answers=sorted(answers),
                    path_nodes=[e.source, e.target] if direction == "tail" else [e.target, e.source],
                    edge_ids=[e.edge_id],
                    citations=e.citations[:1],
                )
            )
    return out


def two_hop_questions(index: GraphIndex, limit: int) -> list[PathQuestion]:
    """Chains A -r1-> B -r2-> C (C not A): "A r1 X, and X r2 ___." -> C, at most ``limit``, most cited first."""
    out_edges: dict[str, list[KGEdge]] = defaultdict(list)
    for e in index.edges:
        out_edges[e.source].append(e)
    chains = []
    for first in index.edges:
        for second in out_edges.get(first.target, []):
            if second.target in (first.source, first.target):
                continue
            chains.append((-(first.weight + second.weight), first.edge_id, second.edge_id, first, second))
    chains.sort(key=lambda c: c[:3])
    ends: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for *_, first, second in chains:
        ends[(first.source, name_key(first.relation), name_key(second.relation))].add(second.target)
    out: list[PathQuestion] = []
    for *_, first, second in chains:
        if len(out) >= limit:
            break
        a, b, c = (index.names[n] for n in (first.source, first.target, second.target))
        question = f"{a} {first.relation} X, and X {second.relation} {BLANK}."
        answers = ends[(first.source, name_key(first.relation), name_key(second.relation))]
        if set(index.find_nodes(question)) & (answers | {first.target}):
            continue
        out.append(
            PathQuestion(
                path_id=_pid(first.edge_id, second.edge_id),
                hops=2,
                direction="tail",
                question=_complete(question),
                answer=f"{c}. ({a} {first.relation} {b}, and {b} {second.relation} {c}.)",
                answers=sorted(answers),
                path_nodes=[first.source, first.target, second.target],
                edge_ids=[first.edge_id, second.edge_id],
                citations=[*first.citations[:1], *second.citations[:1]],
            )
        )
    return out


def path_questions(index: GraphIndex, max_two_hop: int) -> list[PathQuestion]:
    """One-hop questions of every relation and at most ``max_two_hop`` two-hop ones."""
    return one_hop_questions(index) + two_hop_questions(index, max_two_hop)
