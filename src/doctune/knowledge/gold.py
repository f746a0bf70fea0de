"""Precision and recall of an extracted graph against a hand-labelled gold set (``examples/knowledge/gold``).

A gold file lists a document's entities (name, type, aliases) and relations (source, relation, target, evidence).
An extracted node matches a gold entity when one of its forms (name or alias) has the same
:func:`~doctune.knowledge.names.name_key` as one of the gold entity's forms. An extracted edge matches a gold
relation when its two ends match the gold relation's two ends, in either order; the relation phrase is not compared
(the gold's phrases are one annotator's wording). Only nodes and edges cited in the gold file's document count.
Entity precision counts each gold entity once: two nodes of one entity (a merge missed) count one right, one wrong.
Relation precision counts every edge whose ends match a gold pair (two phrasings of one pair both count).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doctune.knowledge.names import name_key
from doctune.knowledge.rows import KGEdge, KGNode


@dataclass
class GoldSet:
    document: str
    entities: list[dict[str, Any]]
    relations: list[dict[str, Any]]
    keys: dict[str, str] = field(default_factory=dict)  # name_key of every gold form -> the gold entity's name

    @classmethod
    def load(cls, path: str | Path) -> GoldSet:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        gold = cls(data["document"], data["entities"], data["relations"])
        for entity in gold.entities:
            for form in [entity["name"], *entity.get("aliases", [])]:
                gold.keys.setdefault(name_key(form), entity["name"])
        return gold

    def entity_of(self, node: KGNode) -> str | None:
        """The gold entity a node matches (by any of its forms), or None."""
        for form in [node.name, *node.aliases]:
            if (hit := self.keys.get(name_key(form))) is not None:
                return hit
        return None


def _prf(tp_pred: int, n_pred: int, tp_gold: int, n_gold: int) -> dict[str, Any]:
    p = tp_pred / n_pred if n_pred else 0.0
    r = tp_gold / n_gold if n_gold else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 3), "recall": round(r, 3), "f1": round(f1, 3), "predicted": n_pred, "gold": n_gold}


def score_graph(gold: GoldSet, doc_id: str, nodes: Sequence[KGNode], edges: Sequence[KGEdge]) -> dict[str, Any]:
    """Entity and relation precision/recall of the graph's part cited in document ``doc_id``, with the lists behind
    them (matched, extracted but not in the gold set, missed)."""
    doc_nodes = [n for n in nodes if doc_id in n.doc_ids]
    matched = {n.node_id: gold.entity_of(n) for n in doc_nodes}
    found_entities = {g for g in matched.values() if g}
    entity_names = [e["name"] for e in gold.entities]
    gold_pairs = {frozenset((r["source"], r["target"])) for r in gold.relations}
    doc_edges = [e for e in edges if doc_id in e.doc_ids]
    by_id = {n.node_id: n for n in nodes}
    edge_hits, found_pairs, extra_edges = 0, set(), []
    for edge in doc_edges:
        a, b = (gold.entity_of(by_id[n]) if n in by_id else None for n in (edge.source, edge.target))
        pair = frozenset((a, b)) if a and b and a != b else None
        if pair is not None and pair in gold_pairs:
            edge_hits += 1
            found_pairs.add(pair)
        else:
            names = [by_id[n].name if n in by_id else n for n in (edge.source, edge.target)]
            extra_edges.append(f"{names[0]} | {edge.relation} | {names[1]}")
    return {
        "document": gold.document,
        "entities": _prf(len(found_entities), len(doc_nodes), len(found_entities), len(entity_names)),
        "relations": _prf(edge_hits, len(doc_edges), len(found_pairs), len(gold_pairs)),
        "entities_extra": sorted(n.name for n in doc_nodes if not matched[n.node_id]),
        "entities_missed": sorted(set(entity_names) - found_entities),
        "relations_extra": extra_edges,
        "relations_missed": sorted(" -- ".join(sorted(p)) for p in gold_pairs - found_pairs),
    }
