"""Config sections of the knowledge recipes: ``kg``, ``wiki``, ``mindmap``, ``dialogue`` (part of ``config.py``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class KGConfig(_Section):
    """The knowledge graph recipe (`doctune generate kg`): extraction per chunk, canonical graph, training examples."""

    strategy: Literal["auto", "span", "one_call"] = Field(
        "auto",
        description="span: entities and relations from the text by rules, the model only labels relations (small "
        "local models, what auto picks for them); one_call: the model extracts entities and relations as JSON.",
    )
    max_chunks: int | None = Field(None, ge=1, description="Extract from at most this many chunks (demos); None: all.")
    documents: list[str] = Field(
        default_factory=list, description="Only documents whose source path contains one of these strings; empty: all."
    )
    max_relation_words: int = Field(8, ge=1, description="Span strategy: longest relation phrase between two names.")
    merge_similarity: float = Field(
        0.9, ge=0.5, le=1.0, description="Names of one type whose embeddings are at least this close are merged."
    )
    seed: int = Field(0, description="Seed of community detection and of the example split.")
    community_summaries: Literal["model", "extractive"] = Field(
        "model", description="model: the generator summarises, each sentence verified (else dropped); extractive."
    )
    context_edges: int = Field(8, ge=1, description="Relations in the graph context given with a question.")
    max_two_hop: int = Field(60, ge=0, description="Two-hop path questions made at most.")
    eval_share: float = Field(0.3, gt=0, lt=1, description="Share of path groups held out for evaluation.")
    system_prompt: str = Field(
        "Answer from what you know of the documents. Be brief.", description="System message of every kg example."
    )


class WikiConfig(_Section):
    """The auto-wiki recipe (`doctune generate wiki`): an article per important entity, grown by a spider."""

    seed_articles: int = Field(4, ge=1, description="Articles started from the graph's most connected entities.")
    topics: list[str] = Field(default_factory=list, description="Entity names to start from as well (seeds).")
    max_articles: int = Field(12, ge=1, description="The spider's budget: articles written at most.")
    max_sentences: int = Field(10, ge=1, description="Sentences per article at most.")
    min_sentences: int = Field(2, ge=1, description="An article with fewer verified sentences is not written.")


class MindmapConfig(_Section):
    """The mind map recipe (`doctune generate mindmap`): per document an outline whose points cite source spans."""

    initial_points: int = Field(6, ge=1, description="Points of the first outline (the document's best sentences).")
    grow: bool = Field(True, description="Add a point for every chunk no supported point covers yet.")
    label_words: int = Field(6, ge=2, description="Longest point label in words.")
    model_labels: bool = Field(True, description="Let the model write point labels (checked; else taken from source).")


class DialogueConfig(_Section):
    """Brainstorming dialogues (`doctune generate dialogue`): personas following a plan, every claim cited."""

    personas: dict[str, str] = Field(
        default_factory=lambda: {
            "expert": "knows the document well and answers from it, citing it",
            "novice": "is new to the subject and asks simple questions",
            "sceptic": "doubts claims and asks where the document says so",
        },
        description="Persona name -> who they are (the prompt's description of the speaker).",
    )
    plan: Literal["brainstorm", "debate"] = Field(
        "brainstorm", description="brainstorm: pitch, questions, critique, revision; debate: claim, counter, reply."
    )
    assistant_persona: str = Field("expert", description="The persona trained as the assistant (loss on its turns).")
    dialogues_per_document: int = Field(2, ge=1, description="Dialogues made from each document.")
    facts_per_dialogue: int = Field(3, ge=1, description="Cited facts each dialogue discusses.")
    topics: list[str] = Field(default_factory=list, description="Topics (entity names or words) to focus dialogues on.")
    documents: list[str] = Field(
        default_factory=list, description="Only documents whose source path contains one of these strings; empty: all."
    )
