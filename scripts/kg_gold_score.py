"""Score a workspace's knowledge graph against the hand-labelled gold set (examples/knowledge/gold/*.json).

    python scripts/kg_gold_score.py knowledge-work [--gold examples/knowledge/gold] [--json out.json]

For each gold file, the document is found in the workspace by its source path; entity and relation precision and
recall (doctune.knowledge.gold) are printed as a Markdown table, followed by what was missed and what was extra.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from doctune.knowledge.gold import GoldSet, score_graph
from doctune.knowledge.rows import KGEdge, KGNode
from doctune.records import Document
from doctune.workspace import Workspace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workspace")
    parser.add_argument("--gold", default="examples/knowledge/gold")
    parser.add_argument("--json", default=None, help="Also write the full scores (with the lists) here.")
    parser.add_argument("--lists", action="store_true", help="Print the missed and extra entities and relations.")
    args = parser.parse_args(argv)
    ws = Workspace(args.workspace)
    docs = ws.read_rows("documents", Document)
    nodes = ws.read_rows("kg_nodes", KGNode)
    edges = ws.read_rows("kg_edges", KGEdge)
    results = []
    for path in sorted(Path(args.gold).glob("*.json")):
        gold = GoldSet.load(path)
        doc = next((d for d in docs if Path(d.source_path).name == Path(gold.document).name), None)
        if doc is None:
            print(f"{path.name}: document {gold.document} is not in the workspace", file=sys.stderr)
            continue
        results.append(score_graph(gold, doc.doc_id, nodes, edges))
    print("| document | entities P | entities R | entities F1 | relations P | relations R | relations F1 |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        e, rel = r["entities"], r["relations"]
        print(
            f"| {Path(r['document']).name} | {e['precision']:.2f} ({e['predicted']} extracted) | "
            f"{e['recall']:.2f} (of {e['gold']}) | {e['f1']:.2f} | {rel['precision']:.2f} ({rel['predicted']} "
            f"extracted) | {rel['recall']:.2f} (of {rel['gold']}) | {rel['f1']:.2f} |"
        )
    if args.lists:
        for r in results:
            print(f"\n## {r['document']}")
            for key in ("entities_missed", "entities_extra", "relations_missed", "relations_extra"):
                print(f"{key} ({len(r[key])}): " + "; ".join(r[key]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0 if results else 1


if __name__ == "__main__":
    raise SystemExit(main())
