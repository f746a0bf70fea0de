"""Graph context for a question: the relations of the entities it names, as a short list of cited facts.

:class:`GraphIndex` finds the graph's entities named in a text (by name or alias, whole words; names of one or two
characters, like R or S, only as written, case-sensitive) and picks the relations around them: relations between
two named entities first, then the other relations of the named entities, most cited first. The same function
builds the context of the "graph as context" training examples, of the evaluation's "with graph context" prompts
and of ``chat``'s ``/kg on``, so the model is trained and measured on what it is given at answer time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property

from doctune.knowledge.graph import edge_statement
from doctune.knowledge.rows import KGEdge, KGNode

CONTEXT_HEADER = "Facts from the knowledge graph of the documents:"


def _form_pattern(form: str) -> str:
    return rf"(?<![\w-]){re.escape(form)}(?![\w-])"


class GraphIndex:
    """Entities and relations of a graph, searchable by the names a text uses."""

    def __init__(self, nodes: Sequence[KGNode], edges: Sequence[KGEdge]):
        self.nodes = {n.node_id: n for n in nodes}
        self.edges = list(edges)
        self.names = {n.node_id: n.name for n in nodes}
        self._by_node: dict[str, list[KGEdge]] = {}
        for edge in self.edges:
            self._by_node.setdefault(edge.source, []).append(edge)
            self._by_node.setdefault(edge.target, []).append(edge)

    @cached_property
    def _patterns(self) -> list[tuple[re.Pattern[str], str]]:
        """(pattern, node_id) per surface form, longest forms first (so "S language" wins over "S")."""
        forms: dict[str, str] = {}
        for node in self.nodes.values():
            for form in [node.name, *node.aliases]:
                form = form.strip()
                if form and form not in forms:
                    forms[form] = node.node_id
        out = []
        for form in sorted(forms, key=len, reverse=True):
            flags = 0 if len(form) <= 2 else re.IGNORECASE
            out.append((re.compile(_form_pattern(form), flags), forms[form]))
        return out

    def find_nodes(self, text: str) -> list[str]:
        """node_ids named in ``text``, in order of first appearance; a span claimed by a longer name is not
        matched again by a shorter one."""
        taken: list[tuple[int, int]] = []
        found: dict[str, int] = {}
        for pattern, node_id in self._patterns:
            for m in pattern.finditer(text):
                if any(m.start() < end and start < m.end() for start, end in taken):
                    continue
                taken.append((m.start(), m.end()))
                found[node_id] = min(found.get(node_id, m.start()), m.start())
        return sorted(found, key=found.__getitem__)

    def mentions(self, text: str, node_id: str) -> bool:
        """Whether ``text`` names the node ``node_id`` (by name or alias)."""
        return node_id in self.find_nodes(text)

    def relations_of(self, node_id: str) -> list[KGEdge]:
        return list(self._by_node.get(node_id, []))

    def statement(self, edge: KGEdge) -> str:
        return edge_statement(edge, self.names)

    def context_edges(self, text: str, k: int) -> list[KGEdge]:
        """At most ``k`` relations for ``text``: between named entities first, then touching one, most cited first
        (ties in the graph's order)."""
        named = self.find_nodes(text)
        if not named:
            return []
        chosen = set(named)
        order = {n: i for i, n in enumerate(named)}
        candidates: dict[str, tuple[int, float, int, KGEdge]] = {}
        for position, edge in enumerate(self.edges):
            inside = (edge.source in chosen) + (edge.target in chosen)
            if inside:
                first = min(order.get(edge.source, 99), order.get(edge.target, 99))
                candidates[edge.edge_id] = (-inside, first - edge.weight / 1000, position, edge)
        ranked = sorted(candidates.values(), key=lambda c: c[:3])
        return [c[3] for c in ranked[:k]]

    def format_context(self, edges: Sequence[KGEdge]) -> str:
        """The context block: a header and one "- statement" line per relation ("" when there is none)."""
        if not edges:
            return ""
        return "\n".join([CONTEXT_HEADER, *(f"- {self.statement(e)}" for e in edges)])

    def context_for(self, text: str, k: int) -> str:
        return self.format_context(self.context_edges(text, k))


def with_context(question: str, context: str) -> str:
    """The user turn of a "graph as context" prompt: the facts, then the question."""
    return f"{context}\n\nQuestion: {question}" if context else question
