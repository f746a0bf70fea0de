"""Row types of the pipeline's artifacts.

Every row carries the ids that trace it back to its source:
``Document.doc_id`` -> ``Chunk.char_start/char_end`` (offsets into ``Document.text``) -> ``Chunk.chunk_id``.
For txt and md files ``Document.text`` is the decoded source itself, so offsets are source offsets.
For derived text (html, pdf, csv) ``Document.spans`` maps ranges of the text back to a locator
in the source file (a page number, a row range).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SourceSpan(BaseModel):
    """A range ``[start, end)`` of ``Document.text`` and where it came from in the source file."""

    model_config = ConfigDict(extra="forbid")

    start: int
    end: int
    locator: str = Field(description='Human-readable origin, e.g. "page 3" or "rows 1-40".')
    page: int | None = None


class Document(BaseModel):
    """One ingested file as clean text."""

    model_config = ConfigDict(extra="forbid")

    doc_id: str = Field(description="First 16 hex chars of sha256 of the raw file bytes.")
    source_path: str
    format: str = Field(description="txt | md | html | pdf | csv")
    title: str
    text: str
    n_chars: int
    spans: list[SourceSpan] = Field(default_factory=list)


class IngestError(BaseModel):
    """A file that could not be ingested, with the reason."""

    model_config = ConfigDict(extra="forbid")

    source_path: str
    reason: str


class Chunk(BaseModel):
    """A contiguous slice of a document: ``document.text[char_start:char_end] == text``."""

    model_config = ConfigDict(extra="forbid")

    chunk_id: str
    doc_id: str
    index: int
    text: str
    char_start: int
    char_end: int
    n_chars: int
    heading_path: list[str] = Field(default_factory=list)
    locators: list[str] = Field(default_factory=list)


class Summary(BaseModel):
    """The LLM summary of one document."""

    model_config = ConfigDict(extra="forbid")

    doc_id: str
    summary: str
    n_pieces: int
    model: str


class Citation(BaseModel):
    """A verbatim span of a source document that supports an item."""

    model_config = ConfigDict(extra="forbid")

    quote: str = Field(description="The exact source text (a fuzzy match is replaced by the span it matched).")
    doc_id: str
    chunk_id: str
    char_start: int = Field(description="Offset in Document.text.")
    char_end: int
    method: str = Field(description="exact | normalized | fuzzy")
    score: float


class QAItem(BaseModel):
    """A question/answer training item generated from one chunk (kind qa) or a group of chunks (multihop)."""

    model_config = ConfigDict(extra="forbid")

    item_id: str
    kind: str = Field(description="qa | multihop | rephrased")
    unit_id: str = Field(description="The chunk id, or the group id of a multihop group.")
    doc_ids: list[str]
    chunk_ids: list[str]
    k: int = Field(description="Number of chunks the item was generated from.")
    question: str
    answer: str
    evaluation_criteria: str
    difficulty: int
    category: str
    citations: list[Citation]
    unverified_quotes: list[str] = Field(default_factory=list)
    citations_verified: bool
    grounding: list[str] = Field(
        default_factory=list,
        description="Why the grounding check failed (ungrounded, unanswerable, echo, copied_example); empty: grounded "
        "(or citations not found). Items with reasons are kept only with generate.grounding: flag.",
    )
    reasoning: str | None = None
    source_item_id: str | None = Field(None, description="For rephrased items: the item they reword.")
    question_source: str | None = Field(
        None, description="Span recipe: who wrote the question, `model` or `template` (the in-situ question)."
    )
    alt_question: str | None = Field(
        None,
        description="Span recipe: the other wording of the same question (the template when the model's question was "
        "kept); the rephrased_train split asks it, so the gate tests a taught fact in a wording never trained on.",
    )
    model: str


class UnitOutcome(BaseModel):
    """How one generation request (a chunk or a group) ended: with items, or with a reason."""

    model_config = ConfigDict(extra="forbid")

    unit_id: str
    chunk_ids: list[str]
    status: str = Field(
        description="items | no_items | refused | invalid | truncated | timeout | rate_limited | "
        "backend_error | too_long | citations_unverified"
    )
    n_items: int = 0
    n_dropped: int = 0
    detail: str = ""


class ItemEmbedding(BaseModel):
    """The embedding of one item's question and answer."""

    model_config = ConfigDict(extra="forbid")

    item_id: str
    source: str = Field(description="The artifact the item came from (qa, multihop).")
    vector: list[float]
    model: str


class DuplicateRecord(BaseModel):
    """An item dropped as a near-duplicate of a kept one."""

    model_config = ConfigDict(extra="forbid")

    item_id: str
    duplicate_of: str
    similarity: float


class ClusterRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cluster: int
    label: str
    size: int
    sample_questions: list[str]


class DatasetItem(QAItem):
    """An item placed in a split of the curated dataset (a train item may also appear in ``mirror``)."""

    source: str = Field(description="Artifact the item came from: qa, multihop, rephrased, manual.")
    split: str = Field(description="train | eval | rephrased_eval | rephrased_train | mirror | manual")
    cluster: int = -1
    cluster_label: str = ""
    tags: list[str] = Field(default_factory=list)


class Speech(BaseModel):
    """One speech of a play (artifact ``speeches``): who says it, where, and where it is in the source file."""

    model_config = ConfigDict(extra="forbid")

    speech_id: str = Field(description="<doc_id>-<index>.")
    doc_id: str
    play: str = Field(description="The play's title.")
    act: str = Field(description='Act label as written ("I", "1", "" when the play has none).')
    scene: str = Field(description='Scene label as written ("II", "" when the play has none).')
    index: int = Field(description="Position of the speech in the play, from 0.")
    speaker: str = Field(
        description='Canonical character name, e.g. "LADY MACBETH"; several for joint speeches: "A/B".'
    )
    raw_speaker: str = Field(description='The speaker tag as written ("Lady M.", "Polon.").')
    text: str = Field(description="The spoken words, stage directions removed.")
    stage_directions: list[str] = Field(default_factory=list, description="Directions found inside the speech.")
    char_start: int = Field(description="Offset of the speech (tag included) in Document.text.")
    char_end: int
    unresolved: bool = Field(False, description="The speaker tag matched no character of the list of persons.")


class Person(BaseModel):
    """A character of a play (artifact ``persons``): from its list of persons, else from the speaker tags."""

    model_config = ConfigDict(extra="forbid")

    doc_id: str
    play: str
    name: str = Field(description="Canonical name, as Speech.speaker uses it.")
    description: str = Field("", description="Who they are, from the list of persons (or plays.persons).")
    aliases: list[str] = Field(default_factory=list, description="Speaker tags resolved to this name.")
    speeches: int = 0
    words: int = 0


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str = Field(description="system | user | assistant")
    content: str


class Example(BaseModel):
    """A training example of any recipe (artifact ``examples_<recipe>``; with ``split`` set in ``dataset_<recipe>``).

    ``messages`` is what a model is trained on (the last assistant turn is the target); ``fields`` holds the
    recipe's typed fields (validated by the recipe's ``fields_model``) as a JSON object.
    """

    model_config = ConfigDict(extra="forbid")

    example_id: str
    recipe: str
    unit_id: str = Field(description="What the example was made from (a speech id, a chunk id, ...).")
    group: str = Field(description="Split group: examples of one group always land in the same split (e.g. a scene).")
    doc_ids: list[str] = Field(default_factory=list)
    messages: list[ChatMessage]
    fields: str = Field("{}", description="The recipe's typed fields as a JSON object.")
    split: str = Field("", description="Set by curation: train | eval | ... (the recipe's split policy).")

    def field_values(self) -> dict:
        import json

        return json.loads(self.fields)

    @property
    def target(self) -> str:
        """The last assistant message: what the model should say."""
        return next(m.content for m in reversed(self.messages) if m.role == "assistant")

    @property
    def prompt_messages(self) -> list[ChatMessage]:
        """The messages before the target (what a model is given to reply to)."""
        last = max(i for i, m in enumerate(self.messages) if m.role == "assistant")
        return self.messages[:last]


class Review(BaseModel):
    """A reviewer's decision on one item (artifact ``reviews``, written by ``doctune review`` and the workbench).

    Scalar fields only, so the artifact has a fixed schema; ``before``, ``after`` and ``recheck`` are JSON objects.
    Curation honours the latest decision per item (any reviewer): rejected items are dropped, edited ones replaced,
    approved ones kept even when the automatic verifier rejects them.
    """

    model_config = ConfigDict(extra="forbid")

    review_id: str = Field(description="Short sha256 of (item_id, reviewer, created_at, decision, after).")
    item_id: str = Field(description="QAItem.item_id or Example.example_id of the reviewed item.")
    recipe: str = Field(
        description='The dataset owner: "qa" for the QA family (artifacts qa, multihop, rephrased, dataset), else '
        "the recipe whose examples_<recipe> / dataset_<recipe> holds the example."
    )
    reviewer: str = Field(description="Who decided (a user name).")
    decision: str = Field(description="approve | reject | edit")
    reason: str = Field("", description="Why (recommended for reject).")
    before: str = Field(description="JSON object of the editable fields before the review.")
    after: str = Field("", description='JSON object of the editable fields after the edit; "" unless decision is edit.')
    created_at: str = Field(description="When, ISO 8601 UTC to the second.")
    verifier: str = Field(
        description='The automatic verifier\'s verdict on the original: "grounded", "ungrounded: unanswerable", '
        '"passes", "fails: empty_target", ...'
    )
    verifier_accepts: bool = Field(description="Whether the automatic verifier accepts the original.")
    override: bool = Field(
        description="The decision disagrees with the verifier: approve or edit of an item it rejects, or reject of "
        "one it accepts."
    )
    recheck: str = Field(
        "",
        description='The verifier\'s verdict on the edited item as JSON (QA: {"grounded", "reasons", "detail", '
        '"scores"}; examples: {"passes", "failed"}); "" unless decision is edit.',
    )
    recheck_accepts: bool | None = Field(None, description="Whether the verifier accepts the edit; None unless edit.")


class Post(BaseModel):
    """One post of a social archive or an added feed (artifact ``posts``): mine (post, reply, boost, like, bookmark)
    or someone else's (a parent of my reply, a liked post, a feed post), traceable to its file and place there."""

    model_config = ConfigDict(extra="forbid")

    post_id: str = Field(description='"<platform>:<native id>" (Twitter id, or the ActivityPub object URI).')
    platform: str = Field(description="mastodon | twitter")
    kind: str = Field(description="post | reply | boost | like | bookmark | feed (someone else's post, seen)")
    author: str = Field(description="Handle or actor URI of who wrote the text ('' when unknown).")
    is_mine: bool = Field(description="Written (post, reply) or acted on (boost, like, bookmark) by the archive owner.")
    created_at: str = Field(description="ISO 8601 UTC ('' when unknown); for a like, when the liked post was written.")
    text: str = Field(description="Plain text (HTML converted, links expanded); '' when not resolved.")
    resolved: bool = Field(description="The text is known (a like or a reply's parent may carry only an id).")
    in_reply_to: str = Field("", description="post_id of the post replied to ('' for none).")
    target: str = Field("", description="For boost, like, bookmark: post_id of the post acted on.")
    conversation: str = Field("", description="Thread id (Mastodon conversation, Twitter conversation root).")
    language: str = ""
    content_warning: str = ""
    media_alt: list[str] = Field(default_factory=list, description="Alt text of attached media.")
    url: str = ""
    source_file: str = Field(description="Path inside the archive or feed file, e.g. outbox.json, data/tweets.js.")
    locator: str = Field("", description='Where in that file, e.g. "orderedItems[12]".')


class CodeUnit(BaseModel):
    """One unit of a code repository (``doctune ingest --as code``): a module, class, function or method."""

    model_config = ConfigDict(extra="forbid")

    unit_id: str = Field(description="Stable: hash of repository, path, qualified name and kind.")
    repo: str = Field(description="The repository's folder name (never an absolute path).")
    path: str = Field(description="Path of the file inside the repository.")
    language: str = Field(description="python | javascript | typescript | go")
    kind: str = Field(description="module | class | function | method (nested functions belong to their parent)")
    name: str
    qualname: str = Field(description="Dotted name inside the file, e.g. Parser.parse.")
    signature: str = ""
    docstring: str = ""
    body: str = Field(description="The unit's source text (the whole file for a module).")
    imports: list[str] = Field(default_factory=list, description="Imports of the unit's file.")
    line_start: int
    line_end: int
    licence: str = Field("", description="SPDX id of the repository's licence file, or 'unknown'.")
    role: str = Field("source", description="source | test | vendored | generated")
    file_sha256: str = ""
