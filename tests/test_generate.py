from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from doctune.config import ModelSpec, dump_config
from doctune.curate.embeddings import (
    EMBEDDERS,
    Embedder,
    EmbeddingCache,
    embedding_key,
    hashed_tfidf,
    register_embedder,
)
from doctune.generate.citations import locate_citation
from doctune.generate.groups import count_combinations, select_groups
from doctune.jobs import Job, run_jobs
from doctune.llm import BackendError, Completion
from doctune.llm.fake import FakeBackend
from doctune.llm.ratelimit import RateLimiter
from doctune.records import Chunk, Document, QAItem, UnitOutcome
from doctune.stages import generate

from genutil import build_workspace, item_for, passages, qa_reply

FakeBackend.register_script("qa-script", qa_reply)


def read(ws, name, row_type, cfg=None):
    return ws.read_rows(name, row_type, cfg)


# -- citations -------------------------------------------------------------------------------------
TEXT = "The Nile flows north.  It passes through\neleven “countries” before the sea."


@pytest.mark.parametrize(
    ("quote", "method", "expected"),
    [
        ("The Nile flows north.", "exact", "The Nile flows north."),
        ('it passes through eleven "countries"', "normalized", "It passes through\neleven “countries”"),
        (
            "It pases through eleven countries before the sea",
            "fuzzy",
            "It passes through\neleven “countries” before the sea.",
        ),
    ],
)
def test_citation_found_and_replaced_by_exact_span(quote, method, expected):
    match = locate_citation(quote, TEXT)
    assert match is not None and match.method == method
    assert TEXT[match.start : match.end] == match.quote == expected


@pytest.mark.parametrize("quote", ["The Amazon is the longest river in Brazil.", "", "ab"])
def test_citation_missing(quote):
    assert locate_citation(quote, TEXT) is None


# -- single-chunk QA through the stage ----------------------------------------------------------------
def test_qa_valid_replies_give_verified_items_with_document_offsets(tmp_path):
    cfg, ws = build_workspace(tmp_path)
    result = generate.run_qa(cfg, ws, progress=False)
    chunks = read(ws, "chunks", Chunk, cfg)
    docs = {d.doc_id: d for d in read(ws, "documents", Document, cfg)}
    items = read(ws, "qa", QAItem, cfg)
    outcomes = read(ws, "qa_outcomes", UnitOutcome, cfg)
    assert len(outcomes) == len(chunks) == result.counts["requests"]
    assert {o.status for o in outcomes} == {"items"}
    assert len(items) == len(chunks)
    assert len({i.item_id for i in items}) == len(items)
    for item in items:
        assert item.citations_verified and item.k == 1
        for c in item.citations:
            assert docs[c.doc_id].text[c.char_start : c.char_end] == c.quote
    assert result.stats["verified_citation_share"] == 1.0


def test_invalid_then_repaired_truncated_refused_and_empty(tmp_path):
    cfg, ws = build_workspace(tmp_path, {"models.generator.model": "scenario", "models.generator.max_concurrency": 1})
    chunks = read(ws, "chunks", Chunk, cfg)
    assert len(chunks) >= 5
    scenarios = {}  # first words of a chunk -> list of replies for its successive requests
    good = lambda msgs: qa_reply(msgs)  # noqa: E731
    plans = [
        ["{not json", good],  # invalid, then repaired
        [Completion(text='{"items": [{"question": "Wh', model="f", finish_reason="length")] * 3,  # truncated
        ["I'm sorry, but I can't help with that."],  # refused
        ['{"items": []}'],  # nothing worth asking: a valid answer
        [json.dumps({"items": [item_for(["The Moon is made of cheese."])]})],  # citation not in the chunk
    ]
    for chunk, plan in zip(chunks, plans, strict=False):
        scenarios[chunk.text[:40]] = list(plan)

    def script(messages):
        key = passages(messages[1].content)[0][:40]
        plan = scenarios.get(key)
        reply = plan.pop(0) if plan else good
        return reply(messages) if callable(reply) else reply

    FakeBackend.register_script("scenario", script)
    generate.run_qa(cfg, ws, progress=False)
    outcomes = {o.unit_id: o for o in read(ws, "qa_outcomes", UnitOutcome, cfg)}
    statuses = [outcomes[c.chunk_id].status for c in chunks[:5]]
    assert statuses == ["items", "truncated", "refused", "no_items", "citations_unverified"]
    assert outcomes[chunks[4].chunk_id].n_dropped == 1
    assert all(o.status == "items" for o in list(outcomes.values())[5:])
    # the manifest lists every non-success with its reason, and counts per reason
    entry = json.loads(ws.manifest_path.read_text())["artifacts"]["qa"]
    assert entry["stats"]["outcomes"]["refused"] == 1
    assert {e["unit_id"] for e in entry["errors"]} == {c.chunk_id for c in chunks[1:3]} | {chunks[4].chunk_id}


def test_unverified_citations_flagged_when_configured(tmp_path):
    cfg, ws = build_workspace(tmp_path, {"models.generator.model": "liar", "generate.unverified": "flag"})
    FakeBackend.register_script("liar", lambda m: json.dumps({"items": [item_for(["Pluto is a planet again."])]}))
    generate.run_qa(cfg, ws, progress=False)
    items = read(ws, "qa", QAItem, cfg)
    assert items and all(not i.citations_verified and i.unverified_quotes for i in items)


def test_standalone_and_example_copies_are_dropped(tmp_path):
    cfg, ws = build_workspace(tmp_path, {"models.generator.model": "lazy"})

    def lazy(messages):
        first = qa_reply(messages)
        item = json.loads(first)["items"][0]
        copied = dict(item, question="Why was the Eiffel Tower not demolished in 1909 as originally planned?")
        vague = dict(item, question="According to the text, what happens?")
        return json.dumps({"items": [item, copied, vague]})

    FakeBackend.register_script("lazy", lazy)
    result = generate.run_qa(cfg, ws, progress=False)
    n = len(read(ws, "chunks", Chunk, cfg))
    assert result.stats["dropped"] == {"copied_example": n, "not_standalone": n}
    assert len(read(ws, "qa", QAItem, cfg)) == n


CRASHING_RUN = """
import os, sys
from genutil import qa_reply
from doctune.config import load_config
from doctune.llm.fake import FakeBackend
from doctune.stages import generate
from doctune.workspace import Workspace

calls = 0
def crashy(messages):
    global calls
    calls += 1
    if calls == 4:
        os._exit(137)  # killed mid-run: no cleanup, no artifact
    return qa_reply(messages)

FakeBackend.register_script("crashy", crashy)
cfg = load_config(sys.argv[1])
generate.run_qa(cfg, Workspace(cfg.workspace), progress=False)
"""


def test_resume_after_kill_repeats_no_finished_call(tmp_path):
    cfg, ws = build_workspace(
        tmp_path / "ws", {"models.generator.model": "crashy", "models.generator.max_concurrency": 1}
    )
    cfg_file = tmp_path / "doctune.yaml"
    cfg_file.write_text(dump_config(cfg))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    proc = subprocess.run([sys.executable, "-c", CRASHING_RUN, str(cfg_file)], env=env, capture_output=True, text=True)
    assert proc.returncode == 137, proc.stderr
    assert not ws.artifact_path("qa").exists()

    calls = {"n": 0}

    def counting(messages):
        calls["n"] += 1
        return qa_reply(messages)

    FakeBackend.register_script("crashy", counting)
    n_chunks = len(read(ws, "chunks", Chunk, cfg))
    result = generate.run_qa(cfg, ws, progress=False)
    assert result.stats["llm"]["cache_hits"] == 3  # the 3 calls finished before the kill are not repeated
    assert calls["n"] == result.stats["llm"]["calls"] == n_chunks - 3
    items = read(ws, "qa", QAItem, cfg)
    assert len(items) == len({i.item_id for i in items}) == n_chunks
    # a rerun of the same config makes no call at all
    again = generate.run_qa(cfg, ws, progress=False)
    assert again.stats["llm"]["calls"] == 0 and calls["n"] == n_chunks - 3
    assert read(ws, "qa", QAItem, cfg) == items


def test_cite_first_strategy_cites_chosen_sentences(tmp_path):
    cfg, ws = build_workspace(
        tmp_path,
        {"models.generator.model": "cited", "generate.strategy": "cite_first", "generate.max_items_per_chunk": 2},
    )

    def cited(messages):
        assert "Key sentences:" in messages[1].content
        key = messages[1].content.split("Key sentences:\n- ", 1)[1].splitlines()[0]
        return json.dumps({k: v for k, v in item_for([key]).items() if k != "citations"})

    FakeBackend.register_script("cited", cited)
    generate.run_qa(cfg, ws, progress=False)
    items = read(ws, "qa", QAItem, cfg)
    assert items and all(i.citations_verified and i.citations[0].method == "exact" for i in items)
    assert all(not i.grounding for i in items)


def test_items_whose_quote_does_not_ground_the_answer_are_rejected_with_reasons(tmp_path):
    """A real quote is not enough: the answer must come from it, add to the question, and the question must ask
    about it (the defect: "max valves per controller? -> 10" citing a sentence about an IP44 rating)."""
    cfg, ws = build_workspace(tmp_path, {"models.generator.model": "ungrounded", "generate.grounding": "drop"})

    def ungrounded(messages):
        first = passages(messages[1].content)[0].split("\n")[-1].split(". ")[0] + "."
        good = item_for([first])
        return json.dumps(
            {
                "items": [
                    good,
                    {**good, "question": "How many valves can one controller drive?", "answer": "10 valves"},
                    {**good, "question": "Who wrote it?", "answer": "Who wrote it?"},
                ]
            }
        )

    FakeBackend.register_script("ungrounded", ungrounded)
    result = generate.run_qa(cfg, ws, progress=False)
    items = read(ws, "qa", QAItem, cfg)
    assert items and all(i.question.startswith("What is said about") for i in items)
    assert result.stats["dropped"].get("ungrounded", 0) + result.stats["dropped"].get("unanswerable", 0) >= len(items)
    assert result.stats["dropped"].get("echo", 0) + result.stats["dropped"].get("unanswerable", 0) >= len(items)
    assert result.stats["grounded_share"] == round(len(items) / result.stats["grounding_checked"], 3) < 0.5
    outcomes = read(ws, "qa_outcomes", UnitOutcome, cfg)
    assert any("ungrounded" in o.detail for o in outcomes)

    # the default keeps them, flagged with their reasons, and reports the same grounded share
    flagged = generate.run_qa(
        cfg.model_copy(update={"generate": cfg.generate.model_copy(update={"grounding": "flag"})}), ws, progress=False
    )
    kept = read(
        ws, "qa", QAItem, cfg.model_copy(update={"generate": cfg.generate.model_copy(update={"grounding": "flag"})})
    )
    assert len(kept) > len(items) and any(not i.grounding for i in kept)
    assert all(set(i.grounding) <= {"ungrounded", "unanswerable", "echo", "copied_example"} for i in kept)
    assert {r for i in kept for r in i.grounding} & {"ungrounded", "unanswerable"}
    assert flagged.stats["grounded_share"] == result.stats["grounded_share"]


# -- multi-chunk ------------------------------------------------------------------------------------
def make_chunks(n_docs: int, per_doc: int) -> list[Chunk]:
    return [
        Chunk(
            chunk_id=f"d{d}-{i:04d}",
            doc_id=f"d{d}",
            index=i,
            text=f"Chunk {i} of document {d} talks about topic {i % 5} and item {i}.",
            char_start=0,
            char_end=10,
            n_chars=10,
        )
        for d in range(n_docs)
        for i in range(per_doc)
    ]


def test_group_budget_and_strategies():
    from doctune.config import MultihopConfig

    small = make_chunks(1, 4)
    cfg = MultihopConfig(min_chunks=2, max_chunks=3, max_groups=40)
    groups = select_groups(small, cfg, hashed_tfidf)
    assert len(groups) == count_combinations([4], 2, 3) == 10  # all combinations fit the budget

    big = make_chunks(3, 60)  # C(60,2)+C(60,3) per document: 36,000+ combinations each
    cfg = MultihopConfig(min_chunks=2, max_chunks=3, max_groups=25, seed=1)
    groups = select_groups(big, cfg, hashed_tfidf)
    assert len(groups) == 25
    keys = [tuple(c.chunk_id for c in g) for g in groups]
    assert len(set(keys)) == 25
    assert all(2 <= len(g) <= 3 and len({c.doc_id for c in g}) == 1 for g in groups)
    assert all([c.index for c in g] == sorted(c.index for c in g) for g in groups)
    assert [tuple(c.chunk_id for c in g) for g in select_groups(big, cfg, hashed_tfidf)] == keys  # reproducible
    cross = select_groups(big, MultihopConfig(max_groups=30, cross_document=True, strategy="sampled"), hashed_tfidf)
    assert any(len({c.doc_id for c in g}) > 1 for g in cross)
    forced = select_groups(big, MultihopConfig(max_groups=12, strategy="all"), hashed_tfidf)
    assert len(forced) == 12


def test_multihop_items_record_chunks_and_need_two(tmp_path):
    cfg, ws = build_workspace(tmp_path, {"multihop.max_groups": 6, "multihop.max_chunks": 2})
    result = generate.run_multihop(cfg, ws, progress=False)
    items = read(ws, "multihop", QAItem, cfg)
    per_doc = {}
    for c in read(ws, "chunks", Chunk, cfg):
        per_doc[c.doc_id] = per_doc.get(c.doc_id, 0) + 1
    assert result.counts["requests"] == count_combinations(list(per_doc.values()), 2, 2) <= 6
    assert items and all(i.k == 2 and len(i.chunk_ids) == 2 and i.kind == "multihop" for i in items)
    assert all(len({c.chunk_id for c in i.citations}) == 2 for i in items)

    cfg, ws = build_workspace(tmp_path / "single", {"multihop.max_groups": 4, "models.generator.model": "one"})
    FakeBackend.register_script("one", lambda m: json.dumps({"items": [item_for([qa_first(m)])]}))
    result = generate.run_multihop(cfg, ws, progress=False)
    assert result.counts["items"] == 0
    assert set(result.stats["outcomes"]) == {"too_few_chunks_cited"}


def qa_first(messages) -> str:
    return json.loads(qa_reply(messages))["items"][0]["citations"][0]


class PairingEmbedder(Embedder):
    """Records every text it embeds. The chunk about Mercury (solar) and the one about drinking water (rivers) get
    nearly the same vector, nothing like any other chunk's: by this embedder they are each other's nearest
    neighbour, which no word overlap would make them."""

    name: ClassVar[str] = "pairing-test"
    PAIR: ClassVar[tuple[str, str]] = ("Mercury", "drinking water")
    calls: ClassVar[list[list[str]]] = []

    def identity(self) -> str:
        return "pairing-test:1"

    def _embed(self, texts: list[str]) -> np.ndarray:
        PairingEmbedder.calls.append(list(texts))
        rows = []
        for text in texts:
            rng = np.random.default_rng(int(hashlib.sha256(text.encode()).hexdigest()[:8], 16))
            vec = rng.normal(size=32)
            vec[0] = 0.0
            if any(word in text for word in self.PAIR):
                vec = vec * 0.01
                vec[0] = 1.0
            rows.append(vec)
        return np.array(rows)


def test_multihop_neighbours_come_from_the_configured_embedder_through_the_cache(tmp_path):
    register_embedder(PairingEmbedder)
    PairingEmbedder.calls.clear()
    try:
        cfg, ws = build_workspace(tmp_path, {"models.embedder": {"backend": "pairing-test"}})
        chunks = read(ws, "chunks", Chunk, cfg)
        pair = {c.chunk_id for c in chunks if any(word in c.text for word in PairingEmbedder.PAIR)}
        assert len(pair) == 2 and len({c.doc_id for c in chunks if c.chunk_id in pair}) == 2
        multihop = cfg.multihop.model_copy(
            update={
                "strategy": "sampled",
                "cross_document": True,
                "max_chunks": 2,
                "neighbour_share": 1.0,  # every group: a seed chunk and its nearest neighbour
                "max_groups": len(chunks),  # every chunk is a seed once
            }
        )
        cfg = cfg.model_copy(update={"multihop": multihop})
        generate.run_multihop(cfg, ws, progress=False)

        # the configured embedder was asked for the chunks' texts, and its neighbours made the groups
        assert sorted(t for call in PairingEmbedder.calls for t in call) == sorted({c.text for c in chunks})
        groups = [set(o.chunk_ids) for o in read(ws, "multihop_outcomes", UnitOutcome, cfg)]
        assert pair in groups
        # the vectors are in the workspace's embedding cache: a rerun embeds nothing
        cache = EmbeddingCache(ws.cache_dir / "embeddings.sqlite")
        keys = [embedding_key("pairing-test:1", c.text) for c in chunks]
        assert set(cache.get_many(keys)) == set(keys)
        cache.close()
        PairingEmbedder.calls.clear()
        generate.run_multihop(cfg, ws, progress=False)
        assert PairingEmbedder.calls == []
        # another embedder would pick other groups: the multihop artifacts are stale under it
        fake = cfg.model_copy(update={"models": cfg.models.model_copy(update={"embedder": ModelSpec(backend="fake")})})
        assert ws.freshness("multihop", cfg) == "fresh"
        assert ws.freshness("multihop", fake).startswith("stale")
        assert ws.freshness("multihop_outcomes", fake).startswith("stale")
    finally:
        EMBEDDERS.unregister("pairing-test")


# -- rephrase ---------------------------------------------------------------------------------------
def test_rephrase_keeps_criteria_and_links_source(tmp_path):
    cfg, ws = build_workspace(
        tmp_path, {"models.rephraser": {"backend": "fake", "model": "reword"}, "rephrase.max_items": 3}
    )
    FakeBackend.register_script(
        "reword", lambda m: json.dumps({"question": "Reworded: " + m[1].content.split("\n")[0], "answer": "Same."})
    )
    generate.run_qa(cfg, ws, progress=False)
    generate.run_rephrase(cfg, ws, progress=False)
    originals = {i.item_id: i for i in read(ws, "qa", QAItem, cfg)}
    rephrased = read(ws, "rephrased", QAItem, cfg)
    assert len(rephrased) == 3
    for r in rephrased:
        src = originals[r.source_item_id]
        assert r.kind == "rephrased" and r.question.startswith("Reworded: Question:")
        assert (r.evaluation_criteria, r.citations, r.difficulty) == (
            src.evaluation_criteria,
            src.citations,
            src.difficulty,
        )


# -- concurrency ------------------------------------------------------------------------------------
def test_runner_runs_jobs_concurrently_and_isolates_failures():
    barrier = threading.Barrier(6, timeout=10)  # breaks unless 6 jobs run at the same time

    def job(i):
        barrier.wait()
        if i == 3:
            raise BackendError("boom")
        return i

    results = run_jobs([Job(str(i), lambda i=i: job(i)) for i in range(6)], max_concurrency=6, progress=False)
    assert [r.value for r in results] == [0, 1, 2, None, 4, 5]
    assert isinstance(results[3].error, BackendError)


def test_rate_limiter_spaces_call_starts():
    now = [0.0]
    waits: list[float] = []

    def sleep(s):
        waits.append(s)
        now[0] += s

    limiter = RateLimiter(120, clock=lambda: now[0], sleep=sleep)  # one start per 0.5 s
    for _ in range(4):
        limiter.acquire()
    assert waits == [0.5, 0.5, 0.5]
