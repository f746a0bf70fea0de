"""summarize: one LLM summary per document, used as context in later prompts.

A document that does not fit in one prompt is split into pieces of at most
``summarize.piece_tokens`` tokens on sentence boundaries; each piece is summarised, then the piece
summaries are combined (in rounds, if even they do not fit). No prompt exceeds the context window.
"""

from __future__ import annotations

import logging
from functools import partial

from tqdm.auto import tqdm

from doctune.chunking import chunk_text
from doctune.chunking.sentences import split_sentences
from doctune.config import ChunkConfig, DoctuneConfig
from doctune.jobs import Job, run_jobs
from doctune.llm import BackendError, CallParams, LLMClient, Message
from doctune.llm.roles import open_client
from doctune.prompts import load_prompt, render_prompt
from doctune.records import Document, IngestError, Summary
from doctune.sampling import evenly_spaced
from doctune.stages import StageResult
from doctune.workspace import Workspace

log = logging.getLogger(__name__)
PROMPT_OVERHEAD_TOKENS = 200  # system prompt + template text around the document piece


def split_for_prompt(text: str, max_tokens: int, client: LLMClient) -> list[str]:
    """Pieces of ``text`` of at most ``max_tokens`` tokens each, cut on sentence boundaries."""
    if client.backend.count_tokens(text) <= max_tokens:
        return [text]
    sample = text[:20000]
    chars_per_token = len(sample) / max(1, client.backend.count_tokens(sample))
    max_chars = max(200, int(max_tokens * chars_per_token * 0.9))
    spans = chunk_text(text, ChunkConfig(min_chars=max_chars // 2, max_chars=max_chars, respect_headings=False))
    return [text[s.start : s.end] for s in spans]


def tidy_summary(text: str) -> str:
    """Cut a small model's reply at its first repeated sentence and drop a trailing fragment."""
    sentences = split_sentences(text.strip())
    kept: list[str] = []
    seen: set[str] = set()
    for sentence in sentences:
        key = " ".join(sentence.lower().split())
        if key in seen:
            break
        seen.add(key)
        kept.append(sentence.strip())
    if len(kept) > 1 and not kept[-1].rstrip().endswith((".", "!", "?", '"', "'", ")")):
        kept.pop()
    return " ".join(kept)


class EmptySummaryError(Exception):
    pass


class DocumentSummarizer:
    """Map-reduce summarisation of one document with one client."""

    def __init__(self, client: LLMClient, config: DoctuneConfig, progress: tqdm | None = None):
        self.client = client
        self.cfg = config.summarize
        self.system = load_prompt("summarize_system")
        self.params = CallParams(
            temperature=config.models.generator.temperature,
            max_tokens=self.cfg.summary_tokens,
            seed=config.models.generator.seed,
        )
        window = client.backend.context_window
        budget = self.cfg.piece_tokens
        if window is not None:
            budget = min(budget, window - self.cfg.summary_tokens - PROMPT_OVERHEAD_TOKENS)
        self.piece_tokens = budget
        self.progress = progress

    def _ask(self, prompt: str) -> str:
        messages = [Message(role="system", content=self.system), Message(role="user", content=prompt)]
        reply = tidy_summary(self.client.chat(messages, self.params).text)
        if self.progress is not None:
            self.progress.update(1)
        if not reply:
            raise EmptySummaryError("the model returned an empty summary")
        return reply

    def pieces(self, doc: Document) -> list[str]:
        return evenly_spaced(split_for_prompt(doc.text, self.piece_tokens, self.client), self.cfg.max_pieces)

    def summarize(self, doc: Document, pieces: list[str]) -> str:
        summaries = [
            self._ask(render_prompt("summarize_piece", title=doc.title, part=i + 1, parts=len(pieces), text=piece))
            for i, piece in enumerate(pieces)
        ]
        while len(summaries) > 1:
            summaries = [self._combine(doc.title, group) for group in self._groups(summaries)]
        return summaries[0]

    def _groups(self, summaries: list[str]) -> list[list[str]]:
        """Consecutive groups of summaries that fit in one combine prompt (at least two per group)."""
        groups: list[list[str]] = [[]]
        used = 0
        for s in summaries:
            n = self.client.backend.count_tokens(s)
            if len(groups[-1]) >= 2 and used + n > self.piece_tokens:
                groups.append([])
                used = 0
            groups[-1].append(s)
            used += n
        if len(groups) > 1 and len(groups[-1]) == 1:
            groups[-2].extend(groups.pop())
        return groups

    def _combine(self, title: str, group: list[str]) -> str:
        if len(group) == 1:
            return group[0]
        listing = "\n".join(f"{i + 1}. {s}" for i, s in enumerate(group))
        return self._ask(render_prompt("summarize_combine", title=title, summaries=listing))


def run(config: DoctuneConfig, workspace: Workspace, progress: bool = True) -> StageResult:
    """Summarise every document of the ``documents`` artifact into the ``summaries`` artifact."""
    docs = workspace.read_rows("documents", Document, config)
    run = workspace.start_run("summarize", config)
    client = open_client(config, workspace, "generator")
    summaries: list[Summary] = []
    errors: list[IngestError] = []
    try:
        summarizer = DocumentSummarizer(client, config)
        plans = []
        for doc in docs:
            try:
                plans.append((doc, summarizer.pieces(doc)))
            except BackendError as exc:
                errors.append(IngestError(source_path=doc.source_path, reason=f"summarize: {exc}"))
        jobs = [Job(doc.doc_id, partial(summarizer.summarize, doc, pieces)) for doc, pieces in plans]
        results = run_jobs(jobs, config.models.generator.max_concurrency, client, "summarize", progress)
        for (doc, pieces), result in zip(plans, results, strict=True):
            if result.error is not None:
                log.error("%s: summary failed: %s", doc.source_path, result.error)
                errors.append(IngestError(source_path=doc.source_path, reason=f"summarize: {result.error}"))
                continue
            summaries.append(
                Summary(doc_id=doc.doc_id, summary=result.value, n_pieces=len(pieces), model=client.backend.label())
            )
    finally:
        client.backend.close()
    rec = run.write_artifact(
        "summaries", summaries, Summary, inputs=["documents"], errors=errors, stats={"llm": client.usage.as_dict()}
    )
    return StageResult(
        stage="summarize",
        outputs={"summaries": str(workspace.root / rec.path)},
        counts={"documents": len(docs), "summaries": len(summaries), "errors": len(errors)},
        errors=[e.model_dump() for e in errors],
        stats={"llm": client.usage.as_dict()},
    )
