"""How close does `doctune generate qa` get to the concurrency limit?

A local OpenAI-compatible server answers every call after a fixed latency. With N calls, latency L
and concurrency C, no client can beat N*L/C; this prints doctune's wall time as a ratio of that
bound (goal: <= 1.10) and LLM calls per accepted and per grounded item.

    python bench/generate.py [--chunks 96] [--latency 0.5] [--concurrency 8]
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
from doctune.records import Chunk, Document, Summary
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


def main() -> None:
    import openai  # noqa: F401  (a one-time process cost, not part of a run)

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=96)
    ap.add_argument("--latency", type=float, default=0.5)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()

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
