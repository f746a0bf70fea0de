from __future__ import annotations

from typing import ClassVar

from doctune.config import DoctuneConfig, ModelSpec
from doctune.llm import BackendError, LLMClient
from doctune.llm.fake import FakeBackend
from doctune.records import Document
from doctune.stages.summarize import DocumentSummarizer, tidy_summary


class SmallWindowFake(FakeBackend):
    """A fake with a tiny context window and a word-count tokenizer."""

    window: ClassVar[int] = 400

    @property
    def context_window(self) -> int:
        return self.window

    def count_tokens(self, text: str) -> int:
        return len(text.split())


def long_document(n_sentences: int = 300) -> Document:
    text = " ".join(f"Sentence number {i} says that fact {i} holds for item {i}." for i in range(n_sentences))
    return Document(doc_id="long", source_path="long.txt", format="txt", title="Facts", text=text, n_chars=len(text))


def summarizer(backend: FakeBackend, **summarize_cfg) -> DocumentSummarizer:
    cfg = DoctuneConfig.model_validate({"summarize": {"summary_tokens": 50, **summarize_cfg}})
    return DocumentSummarizer(LLMClient(backend), cfg)


def test_short_document_is_one_call():
    fake = SmallWindowFake(ModelSpec(backend="fake", options={"default_reply": "A summary."}))
    doc = long_document(3)
    s = summarizer(fake)
    pieces = s.pieces(doc)
    assert pieces == [doc.text]
    assert s.summarize(doc, pieces) == "A summary."
    assert len(fake.requests) == 1
    assert doc.text in fake.requests[0]["messages"][1].content


def test_long_document_is_split_then_combined_within_the_window():
    reply = "Part summary with several words in it, about twenty words long, to fill the combine prompts."
    fake = SmallWindowFake(ModelSpec(backend="fake", options={"default_reply": reply}))
    s = summarizer(fake, piece_tokens=1000)  # larger than the window allows: capped by it
    doc = long_document()
    pieces = s.pieces(doc)
    assert len(pieces) > 5
    # pieces are in order, cover the text and cut on sentence ends
    assert " ".join(pieces) == doc.text
    assert all(p.endswith(".") for p in pieces)
    final = s.summarize(doc, pieces)
    assert final
    n_piece_calls = sum("This is part" in r["messages"][1].content for r in fake.requests)
    n_combine_calls = sum("summaries of consecutive parts" in r["messages"][1].content.lower() for r in fake.requests)
    assert n_piece_calls == len(pieces)
    assert n_combine_calls >= 1
    for req in fake.requests:
        prompt_tokens = sum(fake.count_tokens(m.content) for m in req["messages"])
        assert prompt_tokens + req["params"].max_tokens <= fake.window


def test_max_pieces_samples_evenly():
    fake = SmallWindowFake(ModelSpec(backend="fake", options={"default_reply": "x"}))
    s = summarizer(fake, max_pieces=3)
    pieces = s.pieces(long_document())
    assert len(pieces) == 3
    assert pieces[0].startswith("Sentence number 0 ")


def test_backend_failure_propagates_for_the_stage_to_record():
    fake = SmallWindowFake(ModelSpec(backend="fake"))
    fake.add_replies(BackendError("HTTP 401: bad key"))
    s = summarizer(fake)
    doc = long_document(2)
    try:
        s.summarize(doc, s.pieces(doc))
    except BackendError as exc:
        assert "401" in str(exc)
    else:
        raise AssertionError("expected a BackendError")


def test_tidy_summary_cuts_loops_and_fragments():
    looping = "It is a play. The ghost appears. It is a play. The ghost appears. It is"
    assert tidy_summary(looping) == "It is a play. The ghost appears."
    assert tidy_summary("One sentence without a stop") == "One sentence without a stop"
    assert tidy_summary("Complete one. And a cut-off fragm") == "Complete one."
