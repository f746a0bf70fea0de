"""Hugging Face exports: typed ``DatasetDict``s per config, ``save_to_disk``, a dataset card and Hub pushes.

The features of every config are derived from the pydantic row model (:func:`features_for`): scalars map to
``Value`` (``str`` -> string, ``int`` -> int64, ``float`` -> float64, ``bool`` -> bool), ``X | None`` to the
feature of ``X`` (arrow columns are nullable), ``list[X]`` to ``List(X)`` and a nested model to a struct.
A loaded row therefore equals ``model_dump()`` of the pydantic row, and an empty split keeps its schema.

The JSONL formats (chat, alpaca) live in :mod:`doctune.export.jsonl` and are re-exported here.
"""

from __future__ import annotations

import logging
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, Union, get_args, get_origin

import datasets
import yaml
from pydantic import BaseModel

from doctune.export.jsonl import (
    ALWAYS_PRESENT_SPLITS,
    ordered_splits,
    write_alpaca_jsonl,
    write_chat_jsonl,
    write_jsonl_splits,
)
from doctune.owned import check_dir, check_file, claim_dir, replace_dir
from doctune.records import Chunk, DatasetItem, Document

__all__ = [
    "CONFIGS",
    "DEFAULT_CONFIG",
    "DatasetsHubClient",
    "HubClient",
    "PushError",
    "build_dataset_dicts",
    "dataset_card",
    "features_for",
    "push",
    "save_to_disk",
    "write_alpaca_jsonl",
    "write_chat_jsonl",
    "write_jsonl_splits",
]

log = logging.getLogger(__name__)

#: the exported configs (subsets), in card order
CONFIGS = ("qa", "chunks", "raw")
#: the config marked as the default one on the Hub and in the card
DEFAULT_CONFIG = "qa"
_SPLIT_RE = re.compile(r"^\w+(\.\w+)*$")  # what datasets accepts as a split name
_SCALARS: dict[Any, str] = {str: "string", int: "int64", float: "float64", bool: "bool"}


class PushError(RuntimeError):
    """A push to the Hub failed; the message never contains the token."""


# --------------------------------------------------------------------------- features and dataset dicts


def _feature(annotation: Any, where: str) -> Any:
    """The datasets feature of one pydantic field annotation."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"{where}: unions other than `X | None` have no datasets feature ({annotation!r})")
        return _feature(args[0], where)  # every arrow column is nullable
    if origin is list:
        (inner,) = get_args(annotation)
        return datasets.List(_feature(inner, f"{where}[]"))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return dict(features_for(annotation))  # a struct
    if annotation in _SCALARS:
        return datasets.Value(_SCALARS[annotation])
    raise TypeError(f"{where}: no datasets feature for {annotation!r}")


def features_for(model: type[BaseModel]) -> datasets.Features:
    """Explicit ``datasets.Features`` with one column per field of ``model``, in field order."""
    return datasets.Features(
        {name: _feature(info.annotation, f"{model.__name__}.{name}") for name, info in model.model_fields.items()}
    )


def _dataset(rows: Sequence[BaseModel], features: datasets.Features) -> datasets.Dataset:
    dumped = [row.model_dump() for row in rows]
    columns = {name: [d[name] for d in dumped] for name in features}
    return datasets.Dataset.from_dict(columns, features=features)


def build_dataset_dicts(
    items: list[DatasetItem], chunks: list[Chunk], documents: list[Document]
) -> dict[str, datasets.DatasetDict]:
    """The three configs: ``qa`` (one split per item split; train and eval always), ``chunks`` and ``raw``."""
    by_split: dict[str, list[DatasetItem]] = {split: [] for split in ALWAYS_PRESENT_SPLITS}
    for item in items:
        by_split.setdefault(item.split, []).append(item)
    for split in by_split:
        if not _SPLIT_RE.match(split):
            raise ValueError(f"split name {split!r} is not valid for a Hugging Face dataset (letters, digits, _)")
    qa_features = features_for(DatasetItem)
    qa = datasets.DatasetDict({split: _dataset(by_split[split], qa_features) for split in ordered_splits(by_split)})
    return {
        "qa": qa,
        "chunks": datasets.DatasetDict({"train": _dataset(chunks, features_for(Chunk))}),
        "raw": datasets.DatasetDict({"train": _dataset(documents, features_for(Document))}),
    }


# --------------------------------------------------------------------------- saving and the dataset card


def save_to_disk(
    dicts: Mapping[str, datasets.DatasetDict],
    out_dir: Path,
    *,
    title: str = "doctune dataset",
    description: str | None = None,
) -> dict[str, Path]:
    """Save each config to ``out_dir / <config>`` (a previous copy is replaced) and write ``README.md``.

    Returns config name -> folder, plus ``"card"`` -> the card. Each folder loads with ``datasets.load_from_disk``.
    ``out_dir`` and every config folder carry doctune's ownership marker: an ``out_dir`` or config folder that
    doctune did not create (not empty, no marker) is never replaced, :class:`doctune.owned.NotOwnedError` is
    raised instead (see :mod:`doctune.owned`).
    """
    out_dir = claim_dir(Path(out_dir), by="doctune export")
    targets = {name: check_dir(out_dir / name) for name in dicts}  # refuse before anything is deleted
    card = check_file(out_dir / "README.md")
    paths: dict[str, Path] = {}
    for name, dataset_dict in dicts.items():
        target = targets[name]
        replace_dir(target)
        claim_dir(target, by="doctune export")  # marked first: a killed save leaves a folder doctune may replace
        # datasets writes no shard for an empty split, and load_from_disk then fails: ask for one
        num_shards = {split: 1 for split, ds in dataset_dict.items() if len(ds) == 0}
        dataset_dict.save_to_disk(str(target), num_shards=num_shards or None)
        paths[name] = target
        log.info("saved config %s (%s) -> %s", name, _split_counts(dataset_dict), target)
    card.write_text(dataset_card(dicts, title=title, description=description), encoding="utf-8")
    paths["card"] = card
    return paths


def _split_counts(dataset_dict: datasets.DatasetDict) -> str:
    return ", ".join(f"{split}: {len(ds)}" for split, ds in dataset_dict.items())


_DEFAULT_DESCRIPTION = (
    "Question/answer training data generated by doctune from a body of documents. Every item carries "
    "verbatim citations (document id, chunk id, character offsets) into the source documents."
)
_CONFIG_NOTES = {
    "qa": "curated question/answer items with citations, tags and clusters, one split per use "
    "(train, eval, rephrased_eval, rephrased_train, mirror, manual)",
    "chunks": "the source chunks the items were generated from",
    "raw": "the ingested source documents as clean text",
}


def dataset_card(
    dicts: Mapping[str, datasets.DatasetDict], *, title: str = "doctune dataset", description: str | None = None
) -> str:
    """A ``README.md`` dataset card whose YAML front matter lists configs and splits as ``push_to_hub`` does."""
    meta = {
        "pretty_name": title,
        "tags": ["doctune", "synthetic", "question-answering"],
        "configs": [
            {
                "config_name": name,
                **({"default": True} if name == DEFAULT_CONFIG else {}),
                "data_files": [{"split": split, "path": f"{name}/{split}-*"} for split in dataset_dict],
            }
            for name, dataset_dict in dicts.items()
        ],
        "dataset_info": [
            {
                "config_name": name,
                "splits": [{"name": split, "num_examples": len(ds)} for split, ds in dataset_dict.items()],
            }
            for name, dataset_dict in dicts.items()
        ],
    }
    lines = [
        "---",
        yaml.safe_dump(meta, sort_keys=False).rstrip(),
        "---",
        "",
        f"# {title}",
        "",
        description or _DEFAULT_DESCRIPTION,
        "",
        "| config | split | rows |",
        "|---|---|---|",
    ]
    for name, dataset_dict in dicts.items():
        lines.extend(f"| {name} | {split} | {len(ds)} |" for split, ds in dataset_dict.items())
    lines += ["", "## Configs", ""]
    lines.extend(f"- `{name}`: {_CONFIG_NOTES.get(name, name)}" for name in dicts)
    lines += [
        "",
        "## Loading",
        "",
        "```python",
        "import datasets",
        "",
        'qa = datasets.load_from_disk("qa")  # from the exported folder',
        'qa = datasets.load_dataset("ORG/NAME", "qa")  # once pushed to the Hub',
        "```",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- pushing


class HubClient(Protocol):
    """Pushes one config of a dataset to the Hub; tests pass a fake."""

    def push_dataset_dict(
        self, dataset_dict: datasets.DatasetDict, repo_id: str, config_name: str, private: bool, token: str | None
    ) -> None: ...


class DatasetsHubClient:
    """The real client: ``DatasetDict.push_to_hub`` (network). ``qa`` is set as the default config."""

    def push_dataset_dict(
        self, dataset_dict: datasets.DatasetDict, repo_id: str, config_name: str, private: bool, token: str | None
    ) -> None:
        dataset_dict.push_to_hub(
            repo_id,
            config_name=config_name,
            set_default=True if config_name == DEFAULT_CONFIG else None,
            private=private,
            token=token,
        )


def _redact(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def push(
    dicts: Mapping[str, datasets.DatasetDict],
    repo_id: str,
    private: bool,
    token: str | None,
    client: HubClient | None = None,
) -> list[str]:
    """Push every config to ``repo_id`` (``push_to_hub(repo_id, config_name=..., private=..., token=...)``).

    ``private`` only applies when the repository is created. Returns the pushed config names. A failure raises
    :class:`PushError` with the token masked and the original exception detached (it may quote the token).
    """
    hub = client if client is not None else DatasetsHubClient()
    pushed: list[str] = []
    for name, dataset_dict in dicts.items():
        log.info("pushing config %s (%s) to %s (private=%s)", name, _split_counts(dataset_dict), repo_id, private)
        try:
            hub.push_dataset_dict(dataset_dict, repo_id, name, private, token)
        except Exception as exc:
            detail = _redact(f"{type(exc).__name__}: {exc}", [token])
            raise PushError(f"pushing config '{name}' to {repo_id} failed: {detail}") from None
        pushed.append(name)
    return pushed
