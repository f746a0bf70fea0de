"""How close does `doctune generate qa` get to the concurrency limit?

A local OpenAI-compatible server answers every call after a fixed latency. With N calls, latency L
and concurrency C, no client can beat N*L/C; this prints doctune's wall time as a ratio of that
bound (goal: <= 1.10) and LLM calls per accepted and per grounded item.

    python bench/generate.py [--chunks 96] [--latency 0.5] [--concurrency 8]
    python bench/generate.py --embedded [PATH ...]   # the span recipe with SmolLM2-135M, no config

``--embedded`` runs `generate qa` with every default (``strategy: auto`` -> span for the embedded model) on
documents (default: the two manuals in tests/data/unseen) and prints LLM calls per grounded item.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import tempfile
import threading
import time
from pathlib import Path

from doctune.chunking import chunk_document
from doctune.config import DoctuneConfig
from doctune.llm import Message
from doctune.records import Chunk, Document, Summary, UnitOutcome
from doctune.stages import generate
from doctune.testing.openai_server import ScriptedOpenAIServer, ScriptedReply
from doctune.workspace import Workspace


def synthetic_document(n_paragraphs: int) -> Document:
    paragraphs = [
        f"Station {i} records the river level every {i % 7 + 1} hours. Its gauge was installed in {1900 + i}. "
        f"Readings from station {i} are sent to the regional office in town {i % 11}."
        for i in range(n_paragraphs)
    ]
    text = "\n\n".join(paragraphs)
    return Document(doc_id="bench", source_path="bench.md", format="md", title="Gauges", text=text, n_chars=len(text))


def reply_for(payload: dict) -> str:
    user = Message(**payload["messages"][1]).content
    passage = re.findall(r'"""\n(.*?)\n"""', user, flags=re.DOTALL)[0]
    sentence = passage.split(". ")[0] + "."
    words = sentence.rstrip(".").split()
    item = {  # grounded: the question names the first half of the sentence, the answer states the rest
        "question": f"What does the record say about {' '.join(words[:4])}?",
        "answer": " ".join(words[4:]),
        "evaluation_criteria": "Must restate the fact.",
        "difficulty": 2,
        "category": "factual",
        "citations": [sentence],
    }
    return json.dumps({"items": [item, dict(item, question=item["question"].replace("What", "Which fact"))]})


def serve(latency: float, port_queue: multiprocessing.Queue) -> None:
    """The endpoint runs in its own process, as a real server would: it must not share our GIL."""
    with ScriptedOpenAIServer(lambda p: ScriptedReply(content=reply_for(p), delay_s=latency)) as server:
        port_queue.put(server.base_url)
        threading.Event().wait()


def embedded(paths: list[str]) -> None:
    """The default recipe with the embedded model on real documents: calls per grounded item."""
    from collections import Counter

    from doctune.ingest.collect import collect_documents

    with tempfile.TemporaryDirectory() as tmp:
        cfg = DoctuneConfig.model_validate({"workspace": tmp})
        ws = Workspace(Path(tmp))
        docs = collect_documents([Path(p) for p in paths], cfg.ingest)[0]
        ws.start_run("ingest", cfg).write_artifact("documents", docs, Document)
        summaries = [Summary(doc_id=d.doc_id, summary=d.title, n_pieces=1, model="none") for d in docs]
        ws.start_run("summarize", cfg).write_artifact("summaries", summaries, Summary, inputs=["documents"])
        chunks = [c for d in docs for c in chunk_document(d, cfg.chunk)]
        ws.start_run("chunk", cfg).write_artifact("chunks", chunks, Chunk, inputs=["documents"])
        start = time.perf_counter()
        result = generate.run_qa(cfg, ws, progress=False)
        wall = time.perf_counter() - start
        stats = result.stats
        calls = stats["llm"]["calls"]
        grounded = round(stats["grounded_share"] * stats["grounding_checked"])
        per_chunk = Counter(cid for cid in (i for o in ws.read_rows("qa_outcomes", UnitOutcome, cfg) if o.n_items
                                             for i in o.chunk_ids))  # fmt: skip
        print(f"{len(docs)} documents, {len(chunks)} chunks, strategy {stats['strategy']}, {wall:.1f}s")
        print(
            f"items {result.counts['items']}, grounded share {stats['grounded_share']:.3f}, dropped {stats['dropped']}"
        )
        print(f"chunks with >= 1 item: {len(per_chunk)} of {len(chunks)}; questions by {stats['question_sources']}")
        print(f"LLM calls {calls}: {calls / max(1, grounded):.2f} per grounded item ({grounded} grounded)")
        print(f"verifiers: {stats['verifiers']} (the LLM verifier's check calls the judge role, not counted above)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=96)
    ap.add_argument("--latency", type=float, default=0.5)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--embedded", nargs="*", metavar="PATH", help="run the span recipe with the embedded model")
    args = ap.parse_args()
    if args.embedded is not None:
        embedded(args.embedded or [str(Path(__file__).parent.parent / "tests" / "data" / "unseen")])
        return
    import openai  # noqa: F401  (a one-time process cost, not part of a run)

    queue: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(args.latency, queue), daemon=True)
    server.start()
    base_url = queue.get(timeout=30)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = DoctuneConfig.model_validate(
            {
                "workspace": tmp,
                "chunk": {"min_chars": 100, "max_chars": 220},  # one paragraph per chunk
                "models": {
                    "generator": {
                        "backend": "openai",
                        "model": "bench",
                        "base_url": base_url,
                        "max_concurrency": args.concurrency,
                    }
                },
            }
        )
        ws = Workspace(Path(tmp))
        doc = synthetic_document(args.chunks)
        ws.start_run("ingest", cfg).write_artifact("documents", [doc], Document)
        summary = Summary(doc_id=doc.doc_id, summary="River gauges.", n_pieces=1, model="none")
        ws.start_run("summarize", cfg).write_artifact("summaries", [summary], Summary, inputs=["documents"])
        chunks = chunk_document(doc, cfg.chunk)
        ws.start_run("chunk", cfg).write_artifact("chunks", chunks, Chunk, inputs=["documents"])

        start = time.perf_counter()
        result = generate.run_qa(cfg, ws, progress=False)
        wall = time.perf_counter() - start
        calls = result.stats["llm"]["calls"]
        bound = calls * args.latency / args.concurrency
        print(f"{len(chunks)} chunks, {calls} calls, latency {args.latency}s, concurrency {args.concurrency}")
        print(f"wall {wall:.2f}s vs bound calls x latency / concurrency = {bound:.2f}s")
        print(f"wall / bound: {wall / bound:.3f} (goal <= 1.10)")
        print(f"LLM calls per accepted item: {calls / max(1, result.counts['items']):.2f}")
        grounded = round(result.stats["grounded_share"] * result.stats["grounding_checked"])
        print(f"LLM calls per grounded item: {calls / max(1, grounded):.2f} ({grounded} grounded)")

        start = time.perf_counter()
        again = generate.run_qa(cfg, ws, progress=False)
        rerun = time.perf_counter() - start
        print(
            f"rerun of the same config: {again.stats['llm']['calls']} calls, {rerun / wall:.3f} of the first run's time"
        )
    server.terminate()


if __name__ == "__main__":
    main()
