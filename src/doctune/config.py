"""The configuration tree: one YAML file, one pydantic class per stage, every field documented once.

Unknown keys are errors (``extra="forbid"``). ``$VAR`` / ``${VAR}`` expansion is applied to
secret fields only (``api_key``); everything else is taken literally. ``--set dotted.key=value``
overrides are applied to the raw mapping before validation, so they are validated like the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from doctune.config_code import CodeConfig
from doctune.config_converse import ConverseConfig
from doctune.config_execution import ExecutionConfig
from doctune.config_knowledge import DialogueConfig, KGConfig, MindmapConfig, WikiConfig
from doctune.config_personal import LikesConfig, RankConfig, RepliesConfig, VoiceConfig
from doctune.config_recipes import CharacterConfig, FidelityConfig, PlaysConfig
from doctune.config_search import SearchConfig
from doctune.config_social import SocialConfig
from doctune.train.config import TrainConfig

DEFAULT_CONFIG_FILE = "doctune.yaml"
ROLES = ("generator", "judge", "rephraser", "embedder", "student")
_ENV_REF = re.compile(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$")


class ConfigError(Exception):
    """The configuration cannot be loaded or is invalid; the message says where and why."""


class Section(BaseModel):
    # coerce_numbers_to_str: `--set project=2024` or `workspace: 2024` is the string "2024", not an error
    model_config = ConfigDict(extra="forbid", validate_default=True, coerce_numbers_to_str=True)


class ModelSpec(Section):
    """How to reach the model that plays one role."""

    backend: str = Field(
        "local", description="Backend name from the registry: local, transformers, openai, vllm, fake."
    )
    model: str | None = Field(
        None, description="Model name (openai) or path to a model file/folder (local, transformers)."
    )
    base_url: str | None = Field(
        None,
        description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1. Never written to artifacts, reports "
        "or saved configs: they record `label` (or endpoint-<hash of the URL>) instead.",
    )
    label: str | None = Field(
        None,
        description="Name recorded in artifacts and reports for this model (default: backend and model name, with "
        "endpoint-<hash> for an endpoint and the file or folder name for a local model; never a URL or full path).",
    )
    api_key_env: str | None = Field(None, description="Name of the environment variable that holds the API key.")
    api_key: SecretStr | None = Field(None, description="The key itself; only as $VAR / ${VAR} in files.")
    max_concurrency: int = Field(4, ge=1, description="Concurrent requests allowed to this backend.")
    requests_per_minute: int | None = Field(None, ge=1, description="Request rate cap; none means unlimited.")
    timeout_s: float = Field(120.0, gt=0, description="Per-request timeout in seconds.")
    max_retries: int = Field(4, ge=0, description="Retries of a call after 429, 5xx, timeouts or connection errors.")
    retry_backoff_s: float = Field(1.0, ge=0, description="First retry delay, doubled each time (Retry-After wins).")
    temperature: float = Field(0.0, ge=0, description="Sampling temperature (0 = greedy, reproducible).")
    max_tokens: int = Field(512, ge=1, description="Upper bound on generated tokens per call.")
    seed: int = Field(0, description="Sampling seed passed to backends that accept one.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Backend-specific options, validated by the backend."
    )

    #: fields that change how calls are made but not what they return: not part of staleness hashes
    OPERATIONAL_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {
            "api_key",
            "api_key_env",
            "max_concurrency",
            "requests_per_minute",
            "timeout_s",
            "max_retries",
            "retry_backoff_s",
        }
    )

    def endpoint_label(self) -> str | None:
        """A host-free name for ``base_url`` (``label``, else ``endpoint-<8 hex of its sha256>``); None without one."""
        if not self.base_url:
            return None
        return self.label or "endpoint-" + hashlib.sha256(self.base_url.encode()).hexdigest()[:8]

    def resolved_api_key(self) -> str | None:
        """The key from ``api_key`` or the ``api_key_env`` variable; never logged or stored."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_key_env:
            return os.environ.get(self.api_key_env)
        return None


class ModelsConfig(Section):
    """Role -> model. A role left out uses the embedded default (``backend: local``)."""

    generator: ModelSpec = Field(default_factory=ModelSpec, description="Writes summaries and training items.")
    judge: ModelSpec = Field(default_factory=ModelSpec, description="Grades answers during evaluation.")
    rephraser: ModelSpec = Field(default_factory=ModelSpec, description="Rewords eval items.")
    embedder: ModelSpec = Field(default_factory=ModelSpec, description="Embeds items for curation.")
    student: ModelSpec = Field(default_factory=ModelSpec, description="The model that is fine-tuned.")


class IngestConfig(Section):
    """Turning files into documents."""

    paths: list[str] = Field(
        default_factory=list, description="Files or folders to ingest when none are given on the command line."
    )
    extensions: list[str] = Field(
        default_factory=lambda: [".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".csv"],
        description="File name endings picked up when walking a folder.",
    )
    max_file_mb: float = Field(50.0, gt=0, description="Files larger than this are reported and skipped.")
    csv_rows_per_block: int = Field(
        40, ge=1, description="CSV rows per markdown table block; the header repeats per block."
    )
    min_chars: int = Field(1, ge=0, description="A file whose clean text is shorter than this is reported as empty.")


class SummarizeConfig(Section):
    """One summary per document, map-reduce over pieces for long documents."""

    piece_tokens: int = Field(
        1200, ge=100, description="Largest piece of a document put into one summary prompt, in tokens."
    )
    summary_tokens: int = Field(160, ge=16, description="Token budget for each summary reply.")
    max_pieces: int | None = Field(
        None, ge=1, description="Summarise at most this many evenly spaced pieces of a long document."
    )


class ChunkConfig(Section):
    """Sentence-boundary chunking."""

    min_chars: int = Field(
        400, ge=1, description="Chunks are at least this long unless a section or document is shorter."
    )
    max_chars: int = Field(1500, ge=1, description="Chunks are never longer than this.")
    respect_headings: bool = Field(
        True, description="Start a new chunk at a heading once the current one has min_chars."
    )

    @field_validator("max_chars")
    @classmethod
    def _max_at_least_min(cls, v: int, info: Any) -> int:
        lo = info.data.get("min_chars")
        if lo is not None and v < lo:
            raise ValueError(f"max_chars ({v}) must be >= min_chars ({lo})")
        return v


class MultihopConfig(Section):
    """Questions that need several chunks at once (``generate multihop``; shares the ``generate`` settings)."""

    min_chunks: int = Field(2, ge=2, description="Fewest chunks in a group.")
    max_chunks: int = Field(3, ge=2, description="Most chunks in a group.")
    max_groups: int = Field(40, ge=1, description="Budget: at most this many groups (requests) in all.")
    strategy: Literal["auto", "all", "sampled"] = Field(
        "auto",
        description="all: every combination; sampled: embedding neighbours + random distant groups; "
        "auto: all when the combinations fit the budget, else sampled.",
    )
    neighbour_share: float = Field(
        0.5, ge=0, le=1, description="Share of sampled groups built from nearest neighbours."
    )
    cross_document: bool = Field(False, description="Allow groups whose chunks come from different documents.")
    max_items_per_group: int = Field(2, ge=1, description="Cap on items asked for per group.")
    require_all_cited: bool = Field(
        False, description="Keep only items citing every chunk of their group (else: at least two chunks)."
    )
    seed: int = Field(0, description="Seed of the group sampler.")

    @field_validator("max_chunks")
    @classmethod
    def _max_at_least_min(cls, v: int, info: Any) -> int:
        lo = info.data.get("min_chunks")
        if lo is not None and v < lo:
            raise ValueError(f"max_chunks ({v}) must be >= min_chunks ({lo})")
        return v


class RephraseConfig(Section):
    """Reworded copies of items, for the eval split."""

    source: str = Field("qa", description="Artifact whose items are rephrased (qa or multihop).")
    max_items: int | None = Field(None, ge=1, description="Rephrase at most this many items (first ones).")


class GenerateConfig(Section):
    """Training items from chunks."""

    categories: list[str] = Field(
        default_factory=lambda: ["factual", "conceptual", "procedural", "application", "reasoning"],
        min_length=1,
        description="Allowed values of an item's category.",
    )
    max_items_per_chunk: int = Field(
        3, ge=1, description="Cap on items per chunk; the model may return fewer, or none."
    )
    min_items_per_chunk: int = Field(
        0,
        ge=0,
        description="Items the reply schema requires per chunk; 1 stops small models from always answering none.",
    )
    max_chunks: int | None = Field(None, ge=1, description="Use at most this many chunks, evenly spaced (for demos).")
    include_reasoning: bool = Field(
        False, description="Ask for a reasoning field first (kept apart, never in the answer)."
    )
    strategy: Literal["auto", "one_call", "cite_first", "span"] = Field(
        "auto",
        description="span: doctune picks each answer (a span of a cited sentence) by rule and the model only writes "
        "the question (right by construction; for small models); one_call: one request per chunk returns all its "
        "items; cite_first: doctune picks the sentences, the model writes question and answer; auto: span for local "
        "models under 2 GB of weights (the embedded default among them), one_call for endpoints and larger models.",
    )
    citation_mode: Literal["quote", "sentence"] = Field(
        "quote",
        description="quote: free verbatim quotes, located afterwards; sentence: citations constrained to the "
        "chunk's own sentences (needs a backend that enforces JSON schemas; suits small models).",
    )
    fuzzy_threshold: float = Field(
        90.0, ge=50, le=100, description="Least fuzzy score (0-100) for a citation to count as found."
    )
    unverified: Literal["drop", "flag"] = Field(
        "drop", description="What to do with items whose citations are not in the source."
    )
    grounding: Literal["drop", "flag"] = Field(
        "drop",
        description="What to do with items whose found quotes do not ground them (doctune.grounding: ungrounded, "
        "unanswerable, echo, copied_example): drop them, or keep them with the reasons in their `grounding` field. "
        "Either way `doctune status` reports the grounded share.",
    )
    llm_verifier: bool = Field(
        True,
        description="Also check each item with the judge role (doctune.grounding.LLMVerifier), but only when it first "
        "reaches min_verifier_score on labelled pairs shipped with doctune; the deterministic verifier always runs.",
    )
    verifier_check_pairs: int = Field(24, ge=2, description="Labelled pairs the LLM verifier is checked on (cached).")
    min_verifier_score: float = Field(
        0.8, ge=0, le=1, description="Least precision and recall on those pairs for the LLM verifier to be used."
    )
    max_attempts: int = Field(3, ge=1, description="Replies asked for per request before it is recorded as invalid.")
    max_tokens: int = Field(1024, ge=64, description="Token budget of each generation reply.")


class CurateConfig(Section):
    """Embedding, near-duplicate removal, clusters, splits and the leakage/coverage report."""

    sources: list[str] = Field(
        default_factory=lambda: ["qa"], min_length=1, description="Item artifacts to curate (qa, multihop)."
    )
    dedup_threshold: float = Field(
        0.92, gt=0, le=1, description="Cosine similarity at or above which two items are duplicates."
    )
    ann_min_items: int = Field(
        20000,
        ge=2,
        description="From this many items on, duplicates are found with an ANN index instead of brute force.",
    )
    batch_size: int = Field(64, ge=1, description="Texts per embedding batch.")
    min_clusters: int = Field(2, ge=2, description="Smallest k tried by k-means.")
    max_clusters: int = Field(12, ge=2, description="Largest k tried by k-means.")
    label_clusters: bool = Field(True, description="Name each cluster with the generator model from sample questions.")
    label_samples: int = Field(5, ge=1, description="Questions shown to the model to name a cluster.")
    tags_per_item: int = Field(3, ge=1, description="Topic tags asked for per item by `curate tag`.")
    eval_share: float = Field(
        0.2, gt=0, lt=1, description="Share of items in the eval split (unless eval_size is set)."
    )
    eval_size: int | None = Field(None, ge=1, description="Exact number of eval items; overrides eval_share.")
    mirror_size: int = Field(20, ge=0, description="Train items copied to the mirror split (memorisation check).")
    rephrase_eval: bool = Field(
        True, description="Build the rephrased_eval split from the eval items (rephraser role)."
    )
    rephrase_train: int = Field(
        40,
        ge=0,
        description="Train items whose question the rephraser rewords into the rephrased_train split, the gate's: "
        "facts that were taught, asked in words never seen in training (exempt from the leakage flag by design).",
    )
    manual_path: str | None = Field(None, description="CSV or JSONL of question, answer, criteria: the manual split.")
    leakage_threshold: float = Field(
        0.9, gt=0, le=1, description="An eval item this similar to a train item is flagged as a near-copy."
    )
    projection: Literal["pca", "umap"] = Field("pca", description="2D projection of the map.")
    seed: int = Field(0, description="Seed of k-means, splits and samples.")


class ExportConfig(Section):
    """Hugging Face datasets and JSONL exports."""

    out_dir: str = Field("export", description="Folder for the exported datasets, relative to the workspace.")
    org: str | None = Field(None, description="Hub organisation or user for --push.")
    name: str | None = Field(None, description="Hub dataset name for --push (default: the project name).")
    private: bool = Field(True, description="Pushed datasets are private unless this is false.")
    token_env: str = Field("HF_TOKEN", description="Environment variable holding the Hub token.")
    system_prompt: str = Field(
        "You are a helpful assistant. Answer the question accurately and concisely.",
        description="System message of the chat-format export.",
    )


class GateConfig(Section):
    """When a tuned model may be promoted over the base model."""

    split: str = Field(
        "rephrased_train",
        description="Split the gate is decided on: rephrased_train (taught facts, new wording), or manual, eval, ...",
    )
    metric: Literal["accuracy", "token_f1", "embedding_similarity"] = Field("accuracy", description="Metric compared.")
    min_margin: float = Field(0.0, description="tuned - base must be at least this.")
    require_ci_above_zero: bool = Field(
        True, description="The paired bootstrap interval of tuned - base must be above 0."
    )


class EvaluateConfig(Section):
    """Judged evaluation of base and tuned models (`doctune eval`)."""

    splits: list[str] = Field(
        default_factory=lambda: ["rephrased_train", "mirror", "eval", "rephrased_eval", "manual"],
        description="Splits answered and graded (those the dataset lacks are skipped).",
    )
    max_items_per_split: int | None = Field(None, ge=1, description="Evaluate at most this many items per split.")
    max_tokens: int = Field(128, ge=1, description="Longest answer in tokens (same for every model).")
    n_resamples: int = Field(2000, ge=100, description="Bootstrap resamples for confidence intervals.")
    confidence: float = Field(0.95, gt=0, lt=1, description="Confidence level of the intervals.")
    seed: int = Field(0, description="Bootstrap seed.")
    min_grader_agreement: float = Field(
        0.8,
        ge=0,
        le=1,
        description="A grader's verdicts count only when its check judges at least this share of reference answers "
        "correct and of hard wrong answers incorrect; a judge below it gives way to the deterministic grader.",
    )
    grader_check_items: int = Field(20, ge=1, description="Evaluated items sampled (evenly) for the grader check.")
    gate: GateConfig = Field(default_factory=GateConfig)


class DoctuneConfig(Section):
    """The whole configuration."""

    project: str = Field("doctune", description="Project name, used in manifests and (later) the model registry.")
    workspace: str = Field("doctune-work", description="Folder holding artifacts, manifest, runs and the call cache.")
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    summarize: SummarizeConfig = Field(default_factory=SummarizeConfig)
    chunk: ChunkConfig = Field(default_factory=ChunkConfig)
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    multihop: MultihopConfig = Field(default_factory=MultihopConfig)
    rephrase: RephraseConfig = Field(default_factory=RephraseConfig)
    curate: CurateConfig = Field(default_factory=CurateConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    recipes: list[str] = Field(
        default_factory=lambda: ["qa"],
        description="Recipes `doctune run` makes examples with and trains on: built-in names (qa, character), or "
        '"module:Class" for a recipe defined outside doctune (then also found by its name everywhere).',
    )
    plays: PlaysConfig = Field(default_factory=PlaysConfig)
    character: CharacterConfig = Field(default_factory=CharacterConfig)
    fidelity: FidelityConfig = Field(default_factory=FidelityConfig)
    converse: ConverseConfig = Field(default_factory=ConverseConfig)
    social: SocialConfig = Field(default_factory=SocialConfig)
    code: CodeConfig = Field(default_factory=CodeConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    replies: RepliesConfig = Field(default_factory=RepliesConfig)
    likes: LikesConfig = Field(default_factory=LikesConfig)
    voice: VoiceConfig = Field(default_factory=VoiceConfig)
    rank: RankConfig = Field(default_factory=RankConfig)
    kg: KGConfig = Field(default_factory=KGConfig)
    wiki: WikiConfig = Field(default_factory=WikiConfig)
    mindmap: MindmapConfig = Field(default_factory=MindmapConfig)
    dialogue: DialogueConfig = Field(default_factory=DialogueConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)

    def section_hash(self, *names: str) -> str:
        """Stable hash of the named sections (secrets excluded), used to detect stale artifacts."""
        from doctune import config_io

        data = {}
        for name in names:
            node: Any = self
            for part in name.split("."):
                node = getattr(node, part)
            data[name] = config_io._output_affecting(node) if isinstance(node, BaseModel) else node
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def masked(self) -> dict[str, Any]:
        """The resolved config as plain data with every secret replaced by ``"***"``."""
        from doctune.config_io import _public

        return _public(self)


# reading and writing live in doctune.config_io (they need the tree above); its public names are served from here
_IO_NAMES = frozenset(["apply_overrides", "dump_config", "format_validation_error", "home_relative", "load_config"])


def __getattr__(name: str) -> Any:
    if name in _IO_NAMES:
        from doctune import config_io

        return getattr(config_io, name)
    raise AttributeError(f"module 'doctune.config' has no attribute {name!r}")
