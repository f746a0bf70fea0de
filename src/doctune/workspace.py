"""The workspace: named artifacts, their manifest, and freshness checks.

Layout of a workspace folder::

    artifacts/<name>.parquet        one table per stage output (documents, chunks, summaries, ...)
    manifest.json                   per artifact: rows, sha256, inputs' sha256, config hash, timings, errors
    runs/<run_id>/config.yaml       the resolved config (secrets masked) of each stage run
    runs/<run_id>/run.json          what the run did (stage, outputs, duration, counts)
    cache/llm.sqlite                the LLM call cache (see ``doctune.llm.cache``)

An artifact is *fresh* when the artifacts it was built from still have the content hashes recorded
when it was written and its stage's config sections still hash the same. A stage that reads a stale
input refuses with a message naming the stage to rerun.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from doctune import __version__
from doctune.config import DoctuneConfig, dump_config

log = logging.getLogger(__name__)
Row = TypeVar("Row", bound=BaseModel)

#: artifact name -> (stage command that writes it, config sections it depends on)
ARTIFACT_PRODUCERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "documents": ("ingest", ("ingest",)),
    "summaries": ("summarize", ("summarize", "models.generator")),
    "chunks": ("chunk", ("chunk",)),
    # models.judge: the LLM verifier of generate.llm_verifier
    "qa": ("generate qa", ("generate", "models.generator", "models.judge")),
    "qa_outcomes": ("generate qa", ("generate", "models.generator", "models.judge")),
    "multihop": (
        "generate multihop",
        ("generate", "multihop", "models.generator", "models.embedder", "models.judge"),
    ),
    "multihop_outcomes": (
        "generate multihop",
        ("generate", "multihop", "models.generator", "models.embedder", "models.judge"),
    ),
    "rephrased": ("generate rephrase", ("rephrase", "generate.max_attempts", "models.rephraser")),
    "rephrased_outcomes": ("generate rephrase", ("rephrase", "generate.max_attempts", "models.rephraser")),
    **dict.fromkeys(
        ("embeddings", "dedup", "duplicates"),
        ("curate dedup", ("curate.sources", "curate.dedup_threshold", "curate.ann_min_items", "models.embedder")),
    ),
    **dict.fromkeys(
        ("clusters", "clustered"),
        (
            "curate cluster",
            (
                "curate.min_clusters",
                "curate.max_clusters",
                "curate.label_clusters",
                "curate.label_samples",
                "curate.seed",
                "models.generator",
            ),
        ),
    ),
    "tags": ("curate tag", ("curate.tags_per_item", "models.generator")),
    "exports": ("export", ("export", "project")),
    # export.system_prompt is every example's system message unless train.system_prompt is set
    "training_runs": ("train", ("train", "models.student", "export.system_prompt")),
    "dataset": (
        "curate split",
        (
            "curate.eval_share",
            "curate.eval_size",
            "curate.mirror_size",
            "curate.rephrase_eval",
            "curate.rephrase_train",
            "curate.manual_path",
            "curate.seed",
            "generate.max_attempts",
            "models.rephraser",
            "export.system_prompt",  # the system message of dataset_qa, written by the same stage
        ),
    ),
}


#: artifacts of the recipe seam, one per recipe: prefix -> stage command (the recipe's name follows)
RECIPE_ARTIFACT_PREFIXES: dict[str, str] = {
    "examples_": "generate {}",
    "dataset_": "curate examples {}",
    "exports_": "export --recipe {}",
    "training_runs_": "train --recipe {}",
}
#: the QA family's curated items as Example rows, written with ``dataset`` (system message: export.system_prompt)
ARTIFACT_PRODUCERS["dataset_qa"] = ARTIFACT_PRODUCERS["dataset"]
#: the speeches of plays are written by ingest (with documents)
ARTIFACT_PRODUCERS["speeches"] = ("ingest", ("ingest", "plays"))
ARTIFACT_PRODUCERS["persons"] = ("ingest", ("ingest", "plays"))
ARTIFACT_PRODUCERS["posts"] = ("ingest", ("ingest", "social"))  # social archives (doctune.stages.social_ingest)
ARTIFACT_PRODUCERS["code_units"] = ("ingest", ("ingest", "code"))  # code repositories (doctune.stages.code_ingest)
#: the knowledge recipes' side artifacts, written by their generate step with examples_<recipe>
for _name in ("kg_mentions", "kg_relations", "kg_nodes", "kg_edges", "kg_communities", "kg_merges"):
    ARTIFACT_PRODUCERS[_name] = ("generate kg", ("kg",))
ARTIFACT_PRODUCERS["wiki_articles"] = ("generate wiki", ("wiki",))
ARTIFACT_PRODUCERS["mindmap_nodes"] = ("generate mindmap", ("mindmap",))
#: human review decisions (``doctune review``, the workbench): appended one at a time, no config section
ARTIFACT_PRODUCERS["reviews"] = ("review", ())

#: artifacts a stage reads only when they exist: artifact name (or prefix ending in "_") -> those inputs. An artifact
#: built before one of them appeared is stale; once recorded as an input, a change is caught like any input's.
OPTIONAL_INPUTS: dict[str, tuple[str, ...]] = {"dataset": ("reviews",), "dataset_": ("reviews",)}


def optional_inputs(name: str) -> tuple[str, ...]:
    """The inputs of :data:`OPTIONAL_INPUTS` that the stage writing ``name`` reads when they exist."""
    return tuple(
        dep
        for key, deps in OPTIONAL_INPUTS.items()
        if name == key or (key.endswith("_") and name.startswith(key))
        for dep in deps
    )


def artifact_producer(name: str, config: DoctuneConfig | None = None) -> tuple[str, tuple[str, ...]]:
    """(stage command that writes ``name``, config sections it depends on); recipe artifacts (``examples_<r>``,
    ``dataset_<r>``) depend on the config section named like the recipe when there is one."""
    if name in ARTIFACT_PRODUCERS:
        return ARTIFACT_PRODUCERS[name]
    for prefix, stage in RECIPE_ARTIFACT_PREFIXES.items():
        if name.startswith(prefix):
            recipe = name[len(prefix) :]
            sections = (recipe,) if recipe in DoctuneConfig.model_fields else ()
            if prefix == "dataset_":
                sections = ("curate.seed", *sections)
            elif prefix == "exports_":
                sections = ("export", "project")
            elif prefix == "training_runs_":
                sections = ("train", "models.student")
            return stage.format(recipe), sections
    return name, ()


class StaleArtifactError(Exception):
    """An input artifact is missing or out of date; the message names the command to run."""


@dataclass
class ArtifactRecord:
    """Manifest entry of one artifact."""

    name: str
    path: str
    rows: int
    sha256: str
    stage: str
    config_hash: str
    inputs: dict[str, str]
    run_id: str
    created_at: str
    duration_s: float
    versions: dict[str, str]
    errors: list[dict[str, str]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"doctune": __version__, "python": platform.python_version()}
    for pkg in ("pydantic", "pyarrow", "openai", "llama_cpp_python", "transformers", "torch"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Workspace:
    """A folder of artifacts with a manifest. Cheap to construct: nothing is read until asked."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.artifacts_dir = self.root / "artifacts"
        self.runs_dir = self.root / "runs"
        self.cache_dir = self.root / "cache"
        self.manifest_path = self.root / "manifest.json"

    # -- manifest -------------------------------------------------------------------------
    def manifest(self) -> dict[str, ArtifactRecord]:
        if not self.manifest_path.exists():
            return {}
        data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        return {name: ArtifactRecord(**rec) for name, rec in data.get("artifacts", {}).items()}

    def _write_manifest(self, records: dict[str, ArtifactRecord]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        payload = {"doctune": __version__, "artifacts": {n: r.__dict__ for n, r in sorted(records.items())}}
        tmp = self.manifest_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
        os.replace(tmp, self.manifest_path)

    def artifact_path(self, name: str) -> Path:
        return self.artifacts_dir / f"{name}.parquet"

    # -- runs -----------------------------------------------------------------------------
    def start_run(self, stage: str, config: DoctuneConfig) -> StageRun:
        """Open a run folder and write the resolved (masked) config beside its outputs."""
        run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + f"-{stage}"
        run_dir = self.runs_dir / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(dump_config(config), encoding="utf-8")
        return StageRun(workspace=self, stage=stage, run_id=run_id, run_dir=run_dir, config=config)

    # -- reading --------------------------------------------------------------------------
    def read_rows(self, name: str, row_type: type[Row], config: DoctuneConfig | None = None) -> list[Row]:
        """Read an artifact as validated rows, refusing a missing or stale one."""
        problem = self.freshness(name, config)
        if problem != "fresh":
            stage = artifact_producer(name)[0]
            raise StaleArtifactError(f"artifact '{name}' is {problem}: run `doctune {stage}` first")
        table = pq.read_table(self.artifact_path(name))
        return [row_type.model_validate(r) for r in table.to_pylist()]

    def freshness(self, name: str, config: DoctuneConfig | None = None) -> str:
        """``"fresh"`` or a short reason: missing, changed on disk, stale (input X changed), config changed."""
        records = self.manifest()
        rec = records.get(name)
        path = self.artifact_path(name)
        if rec is None or not path.exists():
            return "missing"
        if file_sha256(path) != rec.sha256:
            return "changed on disk since it was written"
        for dep, sha in rec.inputs.items():
            dep_rec = records.get(dep)
            if dep_rec is None:
                return f"stale (input '{dep}' is missing)"
            if dep_rec.sha256 != sha:
                return f"stale (input '{dep}' changed since it was built)"
        for dep in optional_inputs(name):
            if dep in records and dep not in rec.inputs:
                return f"stale (input '{dep}' is new since it was built)"
        sections = artifact_producer(name)[1]
        if (
            config is not None
            and (sections or name in ARTIFACT_PRODUCERS)
            and config.section_hash(*sections) != rec.config_hash
        ):
            return f"stale (config section {'/'.join(sections)} changed)"
        return "fresh"

    def status(self, config: DoctuneConfig | None = None) -> list[dict[str, Any]]:
        """One entry per artifact: name, rows, freshness, stage, when, errors."""
        out = []
        for name, rec in sorted(self.manifest().items()):
            out.append(
                {
                    "name": name,
                    "rows": rec.rows,
                    "freshness": self.freshness(name, config),
                    "stage": rec.stage,
                    "created_at": rec.created_at,
                    "duration_s": rec.duration_s,
                    "path": rec.path,
                    "errors": rec.errors,
                    "stats": rec.stats,
                }
            )
        return out


@dataclass
class StageRun:
    """One execution of a stage: writes artifacts and records them in the manifest."""

    workspace: Workspace
    stage: str
    run_id: str
    run_dir: Path
    config: DoctuneConfig
    started: float = field(default_factory=time.perf_counter)
    outputs: list[str] = field(default_factory=list)

    def input_hashes(self, names: Iterable[str]) -> dict[str, str]:
        records = self.workspace.manifest()
        return {n: records[n].sha256 for n in names if n in records}

    def write_artifact(
        self,
        name: str,
        rows: Sequence[BaseModel],
        row_type: type[BaseModel],
        inputs: Iterable[str] = (),
        errors: Sequence[BaseModel | dict[str, str]] = (),
        stats: dict[str, Any] | None = None,
    ) -> ArtifactRecord:
        """Write rows atomically as parquet and record the artifact (with its inputs' hashes)."""
        ws = self.workspace
        ws.artifacts_dir.mkdir(parents=True, exist_ok=True)
        path = ws.artifact_path(name)
        schema = _arrow_schema(row_type)
        table = pa.Table.from_pylist([r.model_dump(mode="json") for r in rows], schema=schema)
        tmp = path.with_suffix(".parquet.tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, path)
        sections = artifact_producer(name)[1]
        rec = ArtifactRecord(
            name=name,
            path=str(path.relative_to(ws.root)),
            rows=len(rows),
            sha256=file_sha256(path),
            stage=self.stage,
            config_hash=self.config.section_hash(*sections),
            inputs=self.input_hashes(inputs),
            run_id=self.run_id,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            duration_s=round(time.perf_counter() - self.started, 3),
            versions=_versions(),
            errors=[e.model_dump(mode="json") if isinstance(e, BaseModel) else dict(e) for e in errors],
            stats=stats or {},
        )
        records = ws.manifest()
        records[name] = rec
        ws._write_manifest(records)
        self.outputs.append(name)
        (self.run_dir / "run.json").write_text(
            json.dumps({"stage": self.stage, "outputs": self.outputs, "last": rec.__dict__}, indent=2), encoding="utf-8"
        )
        log.info("wrote %s (%d rows) -> %s", name, len(rows), path)
        return rec


def _arrow_schema(row_type: type[BaseModel]) -> pa.Schema | None:
    """An explicit schema so that empty artifacts still have typed columns."""
    fields = []
    for fname, finfo in row_type.model_fields.items():
        arrow_type = _ARROW_TYPES.get(str(finfo.annotation))
        if arrow_type is None:
            return None  # nested types: let pyarrow infer
        fields.append(pa.field(fname, arrow_type))
    return pa.schema(fields)


_ARROW_TYPES: dict[str, pa.DataType] = {
    "<class 'str'>": pa.string(),
    "<class 'int'>": pa.int64(),
    "<class 'float'>": pa.float64(),
    "<class 'bool'>": pa.bool_(),
    "list[str]": pa.list_(pa.string()),
    "str | None": pa.string(),
    "int | None": pa.int64(),
    "bool | None": pa.bool_(),
}
