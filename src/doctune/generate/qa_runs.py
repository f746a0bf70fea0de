"""The QA family of recipes (qa, multihop, rephrase): chunks -> question/answer items, run by the generate stage.

- ``qa``: one request per chunk -> ``qa`` items and ``qa_outcomes`` (one row per chunk: items, or why not);
- ``multihop``: one request per chunk group (see ``doctune.generate.groups``) -> ``multihop``, ``multihop_outcomes``;
- ``rephrase``: one request per item of ``rephrase.source`` -> ``rephrased``, ``rephrased_outcomes``.

Requests run concurrently up to the role's ``max_concurrency``; every call goes through the cache, so
a rerun of the same config makes no call and a killed run resumes where it stopped. Artifacts are
written once, at the end, from all results: no duplicate rows.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

from doctune.config import DoctuneConfig
from doctune.curate.embeddings import EmbeddingCache, create_embedder, embed_texts
from doctune.data import grounding_pairs
from doctune.generate.groups import select_groups
from doctune.generate.items import ItemGenerator, Unit, UnitResult
from doctune.generate.schema import RephrasedItem
from doctune.generate.strategy import resolve_strategy
from doctune.grounding import REASONS as GROUNDING_REASONS
from doctune.grounding import (
    AllVerifiers,
    DeterministicVerifier,
    GroundingVerifier,
    LLMVerifier,
    check_sample,
    check_verifier,
)
from doctune.jobs import Job, JobResult, run_jobs
from doctune.llm import BackendError, CallParams, LLMClient, Message, StructuredOutputError
from doctune.llm.roles import open_client
from doctune.prompts import render_prompt
from doctune.records import Chunk, Document, QAItem, Summary, UnitOutcome
from doctune.sampling import evenly_spaced
from doctune.stages import StageResult
from doctune.workspace import Workspace

log = logging.getLogger(__name__)
SUCCESS = ("items", "no_items")


def _context(config: DoctuneConfig, ws: Workspace) -> tuple[list[Chunk], dict[str, str], dict[str, str]]:
    chunks = ws.read_rows("chunks", Chunk, config)
    titles = {d.doc_id: d.title for d in ws.read_rows("documents", Document, config)}
    summaries = {s.doc_id: s.summary for s in ws.read_rows("summaries", Summary, config)}
    return chunks, titles, summaries


def _params(config: DoctuneConfig, role: str, max_tokens: int) -> CallParams:
    spec = getattr(config.models, role)
    return CallParams(temperature=spec.temperature, max_tokens=max_tokens, seed=spec.seed)


def run_qa(config: DoctuneConfig, workspace: Workspace, progress: bool = True) -> StageResult:
    """One request per chunk."""
    chunks, titles, summaries = _context(config, workspace)
    chunks = evenly_spaced(chunks, config.generate.max_chunks)
    units = [
        Unit(c.chunk_id, "qa", [c], titles.get(c.doc_id, ""), summaries.get(c.doc_id, "(no summary)")) for c in chunks
    ]
    return _generate_items(config, workspace, units, "qa", progress)


def run_multihop(config: DoctuneConfig, workspace: Workspace, progress: bool = True) -> StageResult:
    """One request per chunk group, within the ``multihop.max_groups`` budget."""
    chunks, titles, summaries = _context(config, workspace)
    # Neighbours by the configured embedder, cached in the workspace like the curate stage's item embeddings;
    # the model loads only if groups are sampled (not when every combination fits the budget).
    embedder = create_embedder(config.models.embedder)
    cache = EmbeddingCache(workspace.cache_dir / "embeddings.sqlite")

    def embed(texts: Sequence[str]) -> np.ndarray:
        return embed_texts(embedder, list(texts), cache, config.curate.batch_size, progress)

    try:
        groups = select_groups(chunks, config.multihop, embed)
    finally:
        embedder.close()
        cache.close()
    units = []
    for group in groups:
        ids = [c.chunk_id for c in group]
        doc_ids = list(dict.fromkeys(c.doc_id for c in group))
        units.append(
            Unit(
                unit_id="g-" + hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16],
                kind="multihop",
                chunks=group,
                title=" / ".join(titles.get(d, "") for d in doc_ids),
                summary=" ".join(summaries.get(d, "") for d in doc_ids) or "(no summary)",
            )
        )
    return _generate_items(config, workspace, units, "multihop", progress)


def _generate_items(
    config: DoctuneConfig, workspace: Workspace, units: list[Unit], artifact: str, progress: bool
) -> StageResult:
    run = workspace.start_run(f"generate {artifact}", config)
    client = open_client(config, workspace, "generator")
    strategy = resolve_strategy(config.generate.strategy, client.backend)
    verifier, verifier_stats = choose_verifier(config, workspace)
    generator = ItemGenerator(
        config.generate,
        client,
        _params(config, "generator", config.generate.max_tokens),
        config.multihop,
        verifier=verifier,
        strategy=strategy,
    )
    try:
        results = _run(
            [(u.unit_id, u) for u in units],
            generator.generate,
            client,
            config.models.generator.max_concurrency,
            artifact,
            progress,
        )
    finally:
        client.backend.close()
        for v in getattr(verifier, "verifiers", []):
            if isinstance(v, LLMVerifier):
                v.client.backend.close()
    items: list[QAItem] = []
    outcomes: list[UnitOutcome] = []
    drops: Counter = Counter()
    rejected: list[dict] = []
    for unit, res in zip(units, results, strict=True):
        if res.error is not None:  # a bug, not a model failure: still recorded, never silent
            outcomes.append(_failed(unit.unit_id, [c.chunk_id for c in unit.chunks], res.error))
            continue
        items.extend(res.value.items)
        outcomes.append(res.value.outcome)
        drops.update(res.value.drop_reasons)
        rejected.extend(res.value.rejected)
    verified = sum(i.citations_verified for i in items)
    grounded = sum(i.citations_verified and not i.grounding for i in items)
    checked = sum(i.citations_verified for i in items) + sum(drops[r] for r in GROUNDING_REASONS)  # quotes found
    stats = {
        "strategy": strategy,
        "verifiers": verifier_stats,
        "outcomes": dict(Counter(o.status for o in outcomes)),
        "dropped": dict(drops),
        "items": len(items),
        "verified_citation_share": round(verified / len(items), 3) if items else 0.0,
        # the quality figure: of the items proposed with real quotes, how many quotes ground their answer
        "grounded_share": round(grounded / checked, 3) if checked else 0.0,
        "grounding_checked": checked,
        "citation_methods": dict(Counter(c.method for i in items for c in i.citations)),
        "question_sources": dict(Counter(i.question_source for i in items if i.question_source)),
        # every proposed item that was not kept, with its reason (listed by `doctune status`)
        "rejected": rejected,
        "llm": client.usage.as_dict(),
    }
    return _write(run, workspace, artifact, items, outcomes, ["chunks", "summaries", "documents"], stats)


def choose_verifier(config: DoctuneConfig, workspace: Workspace) -> tuple[GroundingVerifier, dict]:
    """The deterministic verifier, joined by the judge's (``LLMVerifier``) only when the judge reaches
    ``generate.min_verifier_score`` precision and recall on labelled pairs; (verifier, what was decided and why)."""
    cfg = config.generate
    deterministic = DeterministicVerifier()
    stats: dict = {"deterministic": "always", "llm": "off (generate.llm_verifier: false)"}
    if not cfg.llm_verifier:
        return deterministic, stats
    client = open_client(config, workspace, "judge")
    llm = LLMVerifier(client, _params(config, "judge", 200))
    check = check_verifier(llm, check_sample(grounding_pairs(), cfg.verifier_check_pairs), cfg.min_verifier_score)
    summary = {k: check[k] for k in ("n", "precision", "recall", "passed")}
    if not check["passed"]:
        client.backend.close()
        stats["llm"] = {**summary, "used": False, "why": f"below {cfg.min_verifier_score} on labelled pairs"}
        log.info("LLM verifier not used: precision %.2f, recall %.2f on %d labelled pairs", *_pr(check))
        return deterministic, stats
    stats["llm"] = {**summary, "used": True}
    log.info("LLM verifier used with the deterministic one: precision %.2f, recall %.2f on %d pairs", *_pr(check))
    return AllVerifiers([deterministic, llm]), stats


def _pr(check: dict) -> tuple[float, float, int]:
    return check["precision"], check["recall"], check["n"]


def _failed(unit_id: str, chunk_ids: list[str], error: BaseException) -> UnitOutcome:
    return UnitOutcome(unit_id=unit_id, chunk_ids=chunk_ids, status="error", detail=f"{type(error).__name__}: {error}")


def _run(
    keyed: Sequence[tuple[str, object]], fn: Callable, client: LLMClient, concurrency: int, desc: str, progress: bool
) -> list[JobResult]:
    jobs = [Job(key, partial(fn, unit)) for key, unit in keyed]

    def failed(r: JobResult) -> bool:
        return r.value is not None and r.value.outcome.status not in SUCCESS

    return run_jobs(jobs, concurrency, client, desc=desc, progress=progress, is_failure=failed)


def _write(run, workspace, artifact, items, outcomes, inputs, stats) -> StageResult:
    errors = [
        {"unit_id": o.unit_id, "reason": f"{o.status}: {o.detail}".rstrip(": ")}
        for o in outcomes
        if o.status not in SUCCESS
    ]
    rec = run.write_artifact(artifact, items, QAItem, inputs=inputs, errors=errors, stats=stats)
    run.write_artifact(f"{artifact}_outcomes", outcomes, UnitOutcome, inputs=inputs, stats=stats)
    return StageResult(
        stage=f"generate {artifact}",
        outputs={artifact: str(workspace.root / rec.path)},
        counts={"requests": len(outcomes), "items": len(items), "failed": len(errors)},
        errors=[],
        stats=stats,
    )


class Rephraser:
    def __init__(self, client: LLMClient, params: CallParams, max_attempts: int):
        self.client = client
        self.params = params
        self.max_attempts = max_attempts

    def rephrase(self, item: QAItem) -> UnitResult:
        messages = [
            Message(role="system", content=render_prompt("rephrase_system")),
            Message(role="user", content=render_prompt("rephrase_user", question=item.question, answer=item.answer)),
        ]
        ids = item.chunk_ids
        try:
            reply = self.client.chat_structured(messages, RephrasedItem, self.params, self.max_attempts)
        except StructuredOutputError as exc:
            return UnitResult([], UnitOutcome(unit_id=item.item_id, chunk_ids=ids, status=exc.reason, detail=str(exc)))
        except BackendError as exc:
            return UnitResult([], UnitOutcome(unit_id=item.item_id, chunk_ids=ids, status=exc.kind, detail=str(exc)))
        new = item.model_copy(
            update={
                "item_id": hashlib.sha256(f"rephrased\n{item.item_id}".encode()).hexdigest()[:16],
                "kind": "rephrased",
                "question": reply.question.strip(),
                "answer": reply.answer.strip(),
                "source_item_id": item.item_id,
                "reasoning": None,
                "model": self.client.backend.label(),
            }
        )
        return UnitResult([new], UnitOutcome(unit_id=item.item_id, chunk_ids=ids, status="items", n_items=1))


def rephrase_items(
    config: DoctuneConfig, workspace: Workspace, items: list[QAItem], progress: bool = True
) -> tuple[list[QAItem], list[UnitOutcome], dict]:
    """Reworded copies of ``items`` (rephraser role): (new items, one outcome per item, LLM usage)."""
    client = open_client(config, workspace, "rephraser")
    rephraser = Rephraser(client, _params(config, "rephraser", 512), config.generate.max_attempts)
    try:
        results = _run(
            [(i.item_id, i) for i in items],
            rephraser.rephrase,
            client,
            config.models.rephraser.max_concurrency,
            "rephrase",
            progress,
        )
    finally:
        client.backend.close()
    new_items: list[QAItem] = []
    outcomes: list[UnitOutcome] = []
    for item, res in zip(items, results, strict=True):
        if res.error is not None:
            outcomes.append(_failed(item.item_id, item.chunk_ids, res.error))
            continue
        new_items.extend(res.value.items)
        outcomes.append(res.value.outcome)
    return new_items, outcomes, client.usage.as_dict()


def run_rephrase(config: DoctuneConfig, workspace: Workspace, progress: bool = True) -> StageResult:
    """Reword the question and answer of each item of ``rephrase.source``; criteria and citations are kept."""
    source = config.rephrase.source
    items = workspace.read_rows(source, QAItem, config)[: config.rephrase.max_items]
    run = workspace.start_run("generate rephrase", config)
    new_items, outcomes, usage = rephrase_items(config, workspace, items, progress)
    stats = {"outcomes": dict(Counter(o.status for o in outcomes)), "items": len(new_items), "llm": usage}
    return _write(run, workspace, "rephrased", new_items, outcomes, [source], stats)
