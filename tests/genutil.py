"""Shared helpers for generation tests and benchmarks: a small real workspace and scripted replies."""

from __future__ import annotations

import json
import re
from pathlib import Path

from doctune.chunking import chunk_document
from doctune.chunking.sentences import split_sentences
from doctune.config import DoctuneConfig
from doctune.records import Chunk, Document, Summary
from doctune.workspace import Workspace

SOLAR = """# The Solar System

The Sun is a star at the centre of the Solar System. It holds 99.86 percent of the system's mass.
Its light takes about eight minutes to reach the Earth.

## Inner planets

Mercury is the closest planet to the Sun and has no moons. Venus has a thick atmosphere of carbon dioxide
that traps heat. The Earth is the only planet known to support life.

## Outer planets

Jupiter is the largest planet and has a faint ring system. Saturn is famous for its bright rings of ice.
Uranus rotates on its side with an axial tilt of 98 degrees. Neptune has the strongest winds measured.
"""

RIVERS = """# Rivers

The Nile flows north through eleven countries into the Mediterranean Sea. The Amazon carries more water
than any other river on Earth. The Danube passes through four capital cities, including Vienna and Budapest.

## Uses

Rivers provide drinking water and irrigation for farms. Dams on rivers generate hydroelectric power.
Barges carry heavy cargo cheaply along navigable rivers.
"""


def build_workspace(root: Path, overrides: dict | None = None) -> tuple[DoctuneConfig, Workspace]:
    """documents, summaries and chunks artifacts for two small documents, written through the real stages' API."""
    data = {
        "workspace": str(root),
        "chunk": {"min_chars": 120, "max_chars": 260},
        "models": {"generator": {"backend": "fake", "model": "qa-script", "max_concurrency": 4}},
        # the judge would be the embedded model: its check as a verifier has tests of its own (test_strategy)
        "generate": {"llm_verifier": False},
    }
    for key, value in (overrides or {}).items():
        node = data
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    cfg = DoctuneConfig.model_validate(data)
    ws = Workspace(root)
    docs = [
        Document(doc_id=f"doc{i}", source_path=f"{name}.md", format="md", title=name, text=text, n_chars=len(text))
        for i, (name, text) in enumerate([("solar", SOLAR), ("rivers", RIVERS)])
    ]
    ws.start_run("ingest", cfg).write_artifact("documents", docs, Document)
    summaries = [Summary(doc_id=d.doc_id, summary=f"About {d.title}.", n_pieces=1, model="fake") for d in docs]
    ws.start_run("summarize", cfg).write_artifact("summaries", summaries, Summary, inputs=["documents"])
    chunks = [c for d in docs for c in chunk_document(d, cfg.chunk)]
    ws.start_run("chunk", cfg).write_artifact("chunks", chunks, Chunk, inputs=["documents"])
    return cfg, ws


def passages(user_message: str) -> list[str]:
    return re.findall(r'"""\n(.*?)\n"""', user_message, flags=re.DOTALL)


def item_for(sentences: list[str], question: str | None = None) -> dict:
    """A grounded item about the first sentence: the question names its first half, the answer states the rest."""
    first = sentences[0]
    words = first.rstrip(".").split()
    half = max(1, len(words) // 2)
    return {
        "question": question or f"What is said about {' '.join(words[:half])}?",
        "answer": " ".join(words[half:]) or first,
        "evaluation_criteria": f"Must state that {first}",
        "difficulty": 3,
        "category": "factual",
        "citations": sentences,
    }


def qa_reply(messages) -> str:
    """A good reply: one item per passage citing its first sentence (one item citing all, if several)."""
    found = passages(messages[1].content)
    firsts = [split_sentences(p.split("\n", 1)[-1] if p.startswith("#") else p)[0] for p in found]
    return json.dumps({"items": [item_for(firsts)]})
