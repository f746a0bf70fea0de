"""Scale-out on this machine: local engine vs Ray, 1k / 3k / 10k synthetic documents.

Each size runs ingest -> chunk -> generate qa (a fixed-latency OpenAI-compatible endpoint in its own process)
-> embed (the curate stage's embedding of the generated items, all-MiniLM-L6-v2) twice: once on the local engine
(threads of this process) and once on a Ray cluster started here (`ray start --head`, this machine's CPUs). It
prints each stage's seconds, the Ray/local ratio, and how time grows with the number of documents, and checks
that both engines wrote the same artifacts.

    python bench/scale.py [--sizes 1000 3000 10000] [--latency 0.05] [--concurrency 8]

Nothing is cached between runs: every size and engine gets its own workspace (the endpoint's port is part of
every call's cache key, so nothing is shared either).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from doctune.config import DoctuneConfig
from doctune.execution import executor_for, use_executor
from doctune.records import Document, QAItem, Summary
from doctune.stages import chunk, generate, ingest
from doctune.stages.curate import embed_items
from doctune.testing.fixed_latency import FixedLatencyEndpoint
from doctune.workspace import Workspace

STAGES = ("ingest", "chunk", "generate", "embed")


def write_corpus(folder: Path, n_docs: int) -> None:
    """``n_docs`` small distinct Markdown files (one or two chunks each)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_docs):
        text = (
            f"# Gauge {i}\n\nStation {i} records the river level every {i % 7 + 1} hours. Its gauge was installed "
            f"in {1800 + i % 220}. Readings from station {i} are sent to the regional office in town {i % 11}.\n\n"
            f"The station {i} log for season {i % 4} lists {i % 97} floods and {i % 13} droughts in total."
        )
        (folder / f"gauge_{i:05d}.md").write_text(text, encoding="utf-8")


def run_pipeline(cfg: DoctuneConfig, corpus: Path) -> tuple[dict[str, float], dict[str, int]]:
    ws = Workspace(Path(cfg.workspace))
    times: dict[str, float] = {}
    with use_executor(executor_for(cfg.execution)) as executor:
        try:
            if cfg.execution.engine == "ray":  # connect (and start the cache actor) outside the timings
                executor.run_jobs([], 1)
                executor._ensure_started()
            t = time.perf_counter()
            ingest.run(cfg, ws, [str(corpus)], progress=False)
            times["ingest"] = time.perf_counter() - t
            t = time.perf_counter()
            chunk.run(cfg, ws, progress=False)
            times["chunk"] = time.perf_counter() - t
            docs = ws.read_rows("documents", Document, cfg)
            summaries = [Summary(doc_id=d.doc_id, summary=d.title, n_pieces=1, model="none") for d in docs]
            ws.start_run("summarize", cfg).write_artifact("summaries", summaries, Summary, inputs=["documents"])
            t = time.perf_counter()
            generate.run(cfg, ws, "qa", progress=False)
            times["generate"] = time.perf_counter() - t
            items = ws.read_rows("qa", QAItem, cfg)
            t = time.perf_counter()
            embed_items(cfg, ws, items, progress=False)
            times["embed"] = time.perf_counter() - t
        finally:
            executor.close()
    counts = {"documents": len(docs), "items": len(items)}
    counts["chunks"] = len(ws.read_rows("chunks", __import__("doctune.records").records.Chunk, cfg))
    return times, counts


def start_ray(cpus: int) -> tuple[str, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ["RAY_AUTH_MODE"] = "disabled"  # a private cluster on 127.0.0.1
    ray_cli = str(Path(sys.executable).parent / "ray")
    subprocess.run(
        [ray_cli, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", f"--num-cpus={cpus}",
         "--include-dashboard=false", "--disable-usage-stats"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return f"127.0.0.1:{port}", ray_cli


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000])
    ap.add_argument("--latency", type=float, default=0.05, help="seconds per call at the endpoint")
    ap.add_argument("--concurrency", type=int, default=8, help="generator max_concurrency")
    ap.add_argument("--json", type=Path, help="also write the measurements here")
    args = ap.parse_args()
    cpus = os.cpu_count() or 1
    address, ray_cli = start_ray(cpus)
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="doctune-scale-"))
    try:
        with FixedLatencyEndpoint(args.latency) as endpoint:
            for n in args.sizes:
                corpus = tmp / f"corpus_{n}"
                write_corpus(corpus, n)
                result = {"documents": n}
                artifacts = {}
                for engine in ("local", "ray"):
                    cfg = DoctuneConfig.model_validate(
                        {
                            "workspace": str(tmp / f"ws_{n}_{engine}"),
                            "generate": {"llm_verifier": False},
                            "execution": {"engine": engine, "address": address},
                            "models": {
                                "generator": {
                                    "backend": "openai",
                                    "model": "bench",
                                    "base_url": endpoint.base_url,
                                    "max_concurrency": args.concurrency,
                                }
                            },
                        }
                    )
                    times, counts = run_pipeline(cfg, corpus)
                    result[engine] = {"seconds": {k: round(v, 2) for k, v in times.items()}, **counts}
                    ws = Workspace(Path(cfg.workspace))
                    artifacts[engine] = sorted(i.question + i.answer for i in ws.read_rows("qa", QAItem, cfg))
                    print(f"{n:>6} docs {engine:>5}: " + ", ".join(f"{k} {v:.1f}s" for k, v in times.items())
                          + f" ({counts['chunks']} chunks, {counts['items']} items)", flush=True)  # fmt: skip
                result["same_items"] = artifacts["local"] == artifacts["ray"]
                rows.append(result)
                shutil.rmtree(corpus, ignore_errors=True)
    finally:
        subprocess.run([ray_cli, "stop", "--force"], capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nray / local time (this machine: {cpus} CPUs; endpoint latency {args.latency}s, concurrency "
          f"{args.concurrency}); < 1 means Ray was faster")  # fmt: skip
    print("| documents | " + " | ".join(STAGES) + " | total | same items |")
    print("|---" * (len(STAGES) + 3) + "|")
    for r in rows:
        ratios = [r["ray"]["seconds"][s] / max(r["local"]["seconds"][s], 1e-9) for s in STAGES]
        total = sum(r["ray"]["seconds"].values()) / max(sum(r["local"]["seconds"].values()), 1e-9)
        print(
            f"| {r['documents']} | " + " | ".join(f"{x:.2f}" for x in ratios) + f" | {total:.2f} | {r['same_items']} |"
        )
    print("\nseconds per 1,000 documents (how time grows with the corpus)")
    print("| documents | engine | " + " | ".join(STAGES) + " | total |")
    print("|---" * (len(STAGES) + 3) + "|")
    for r in rows:
        for engine in ("local", "ray"):
            secs = r[engine]["seconds"]
            per_k = [secs[s] * 1000 / r["documents"] for s in STAGES]
            print(f"| {r['documents']} | {engine} | " + " | ".join(f"{x:.2f}" for x in per_k)
                  + f" | {sum(per_k):.2f} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
