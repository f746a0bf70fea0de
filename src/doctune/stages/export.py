"""export: the ``dataset``, ``chunks`` and ``documents`` artifacts -> Hugging Face datasets, JSONL, optional push.

Written under ``<workspace>/<export.out_dir>``::

    qa/ chunks/ raw/         one ``DatasetDict.save_to_disk`` folder per config (``datasets.load_from_disk``)
    README.md                the dataset card (front matter in the layout ``push_to_hub`` uses)
    chat/<split>.jsonl       chat messages (system prompt from ``export.system_prompt``)
    alpaca/<split>.jsonl     instruction / input / output records

The ``exports`` artifact records one row per config/split and JSONL file (rows, path, the Hub repo if pushed),
with ``dataset``, ``chunks`` and ``documents`` as inputs, so ``doctune status`` shows it stale when they change.

Push naming rule (:func:`resolve_repo_id`), applied when ``push_to`` is not None:

1. ``push_to`` is the requested name; an empty string means "no name given": use ``export.name``, else the project.
2. A name containing ``/`` must be exactly ``OWNER/NAME`` and is used as is (``export.org`` is ignored).
3. A bare ``NAME`` goes under ``export.org`` when set (``ORG/NAME``); otherwise it stays bare and the Hub puts it
   under the account that owns the token.

Each part must be letters, digits, ``.``, ``_`` or ``-`` (starting with a letter or digit, at most 96 characters).
The token comes from the environment variable ``export.token_env`` (unset: the saved ``hf auth login`` token, if
any) and never reaches logs, the manifest or error messages. Repositories are created private unless
``export.private`` is false.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import datasets
from pydantic import BaseModel, ConfigDict, Field

from doctune.config import DoctuneConfig, ExportConfig
from doctune.export.hf import HubClient, PushError, build_dataset_dicts, push, save_to_disk
from doctune.export.jsonl import write_jsonl_splits
from doctune.records import Chunk, DatasetItem, Document
from doctune.stages import StageResult
from doctune.workspace import Workspace

log = logging.getLogger(__name__)

INPUTS = ("dataset", "chunks", "documents")
_REPO_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


class ExportRow(BaseModel):
    """One exported table or file: a config/split saved to disk, or one split of a JSONL format."""

    model_config = ConfigDict(extra="forbid")

    format: str = Field(description="hf (a save_to_disk split) | chat | alpaca")
    config: str = Field(description="qa | chunks | raw (chat and alpaca files hold qa items)")
    split: str
    rows: int
    path: str = Field(description="Relative to the workspace when inside it.")
    repo_id: str | None = Field(None, description="The Hub dataset it was pushed to, if any (hf rows only).")


def resolve_repo_id(push_to: str, export: ExportConfig, project: str) -> str:
    """The Hub repo id for ``push_to`` (see the module docstring for the rule); raises ValueError if invalid."""
    name = push_to.strip() or export.name or project
    if "/" in name:
        parts = name.split("/")
        if len(parts) != 2:
            raise ValueError(f"push target {name!r}: expected OWNER/NAME")
    else:
        parts = [export.org, name] if export.org else [name]
    for part in parts:
        if not _REPO_PART.match(part) or ".." in part or "--" in part or part.endswith((".", "-")):
            raise ValueError(
                f"push target {'/'.join(parts)!r}: {part!r} is not a valid Hub name (letters, digits, '.', '_', "
                "'-'); pass ORG/NAME or set export.org / export.name"
            )
    return "/".join(parts)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


@contextmanager
def _progress_bars(enabled: bool) -> Iterator[None]:
    """Silence datasets' progress bars for the block when ``enabled`` is false (restored afterwards)."""
    silence = not enabled and not datasets.are_progress_bars_disabled()
    if silence:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if silence:
            datasets.enable_progress_bars()


def run(
    config: DoctuneConfig,
    workspace: Workspace,
    push_to: str | None = None,
    progress: bool = True,
    hub_client: HubClient | None = None,
    recipe: str | None = None,
) -> StageResult:
    """Export the curated dataset; push it when ``push_to`` is not None (``""``: the configured name).

    ``recipe``: export ``dataset_<recipe>`` instead (see :func:`run_recipe`); None: the QA dataset.
    """
    if recipe is not None:
        return run_recipe(config, workspace, recipe, push_to=push_to, progress=progress, hub_client=hub_client)
    items = workspace.read_rows("dataset", DatasetItem, config)
    chunks = workspace.read_rows("chunks", Chunk, config)
    documents = workspace.read_rows("documents", Document, config)
    repo_id = resolve_repo_id(push_to, config.export, config.project) if push_to is not None else None

    run = workspace.start_run("export", config)
    out_dir = workspace.root / config.export.out_dir
    root = workspace.root
    with _progress_bars(progress):
        dicts = build_dataset_dicts(items, chunks, documents)
        paths = save_to_disk(dicts, out_dir, title=config.project)
    jsonl = write_jsonl_splits(items, out_dir, config.export.system_prompt)

    rows = [
        ExportRow(format="hf", config=name, split=split, rows=len(ds), path=_relative(paths[name] / split, root))
        for name, dataset_dict in dicts.items()
        for split, ds in dataset_dict.items()
    ]
    rows += [
        ExportRow(format=fmt, config="qa", split=split, rows=n, path=_relative(path, root))
        for fmt, files in jsonl.items()
        for split, (path, n) in files.items()
    ]
    counts = {"items": len(items), "chunks": len(chunks), "documents": len(documents)}
    counts.update({f"qa/{split}": len(ds) for split, ds in dicts["qa"].items()})
    stats: dict[str, object] = {"out_dir": _relative(out_dir, root), "pushed_to": None, "private": None}

    errors: list[dict[str, str]] = []
    if repo_id is not None:
        token = os.environ.get(config.export.token_env) or None
        if token is None:
            log.warning("$%s is not set: pushing with the saved Hub login, if any", config.export.token_env)
        private = config.export.private
        try:
            with _progress_bars(progress):
                push(dicts, repo_id, private=private, token=token, client=hub_client)
        except PushError as exc:
            errors.append({"repo_id": repo_id, "reason": str(exc)})
            run.write_artifact("exports", rows, ExportRow, inputs=INPUTS, errors=errors, stats=stats)
            raise
        for row in rows:
            if row.format == "hf":
                row.repo_id = repo_id
        stats.update({"pushed_to": repo_id, "private": private})
        log.info("pushed %s to https://huggingface.co/datasets/%s", ", ".join(dicts), repo_id)

    rec = run.write_artifact("exports", rows, ExportRow, inputs=INPUTS, errors=errors, stats=stats)
    outputs = {name: str(path) for name, path in paths.items()}
    outputs.update({fmt: str(out_dir / fmt) for fmt in jsonl})
    outputs["exports"] = str(root / rec.path)
    return StageResult(stage="export", outputs=outputs, counts=counts, errors=errors, stats=stats)


def run_recipe(
    config: DoctuneConfig,
    workspace: Workspace,
    recipe: str,
    push_to: str | None = None,
    progress: bool = True,
    hub_client: HubClient | None = None,
) -> StageResult:
    """Export ``dataset_<recipe>`` to ``<export.out_dir>/<recipe>/`` (see :mod:`doctune.export.examples`).

    Records the ``exports_<recipe>`` artifact (one row per split and chat file); pushes the ``DatasetDict`` as the
    Hub config ``<recipe>`` when ``push_to`` is not None.
    """
    from doctune.export.examples import export_examples
    from doctune.recipes import dataset_recipe
    from doctune.records import Example

    chosen = dataset_recipe(recipe, config)
    source = f"dataset_{chosen.name}"
    examples = workspace.read_rows(source, Example, config)
    repo_id = resolve_repo_id(push_to, config.export, config.project) if push_to is not None else None
    stage = f"export {chosen.name}"
    run_ = workspace.start_run(stage, config)
    root = workspace.root
    with _progress_bars(progress):
        dataset_dict, target, chat = export_examples(examples, root / config.export.out_dir, chosen.name, chosen.splits)
    rows = [
        ExportRow(format="hf", config=target.name, split=split, rows=len(ds), path=_relative(target / split, root))
        for split, ds in dataset_dict.items()
    ]
    rows += [
        ExportRow(format="chat", config=target.name, split=split, rows=n, path=_relative(path, root))
        for split, (path, n) in chat.items()
    ]
    stats: dict[str, object] = {"out_dir": _relative(target, root), "pushed_to": None, "private": None}
    artifact = f"exports_{chosen.name}"
    if repo_id is not None:
        token = os.environ.get(config.export.token_env) or None
        try:
            with _progress_bars(progress):
                push(
                    {target.name: dataset_dict}, repo_id, private=config.export.private, token=token, client=hub_client
                )
        except PushError as exc:
            errors = [{"repo_id": repo_id, "reason": str(exc)}]
            run_.write_artifact(artifact, rows, ExportRow, inputs=[source], errors=errors, stats=stats)
            raise
        for row in rows:
            row.repo_id = repo_id if row.format == "hf" else None
        stats.update({"pushed_to": repo_id, "private": config.export.private})
    rec = run_.write_artifact(artifact, rows, ExportRow, inputs=[source], stats=stats)
    counts = {split: len(ds) for split, ds in dataset_dict.items()}
    outputs = {chosen.name: str(target), "chat": str(target / "chat"), artifact: str(root / rec.path)}
    return StageResult(stage=stage, outputs=outputs, counts=counts, stats=stats)
