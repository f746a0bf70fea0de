"""Export of any recipe's curated examples (``dataset_<recipe>``): a Hugging Face ``DatasetDict`` and chat JSONL.

Written under ``<export.out_dir>/<recipe>/``::

    dataset_dict.json, <split>/    ``DatasetDict.save_to_disk``: ``datasets.load_from_disk("<out_dir>/<recipe>")``
    chat/<split>.jsonl             ``{"messages": [{"role": ..., "content": ...}, ...]}`` per example

One split per ``Example.split`` (``train`` and ``eval`` always, possibly empty); columns ``example_id``,
``recipe``, ``unit_id``, ``group``, ``doc_ids``, ``messages`` (a list of ``{role, content}``) and ``fields`` (the
recipe's typed fields as a JSON string). After saving, the folder is loaded back and compared row by row
(:func:`verify_round_trip`), so an export that would not load fails here rather than at training time.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import datasets

from doctune.export.jsonl import ALWAYS_PRESENT_SPLITS
from doctune.owned import check_dir, claim_dir, replace_dir
from doctune.records import Example

log = logging.getLogger(__name__)

#: folder names the QA export uses under ``export.out_dir`` (a recipe may not take them)
RESERVED = ("qa", "chunks", "raw", "chat", "alpaca", "README.md")


def export_folder(recipe: str) -> str:
    """The folder (and Hub config) of a recipe's export: its name, or ``<name>-examples`` when the QA export uses
    the name (``qa``: the QA family's examples sit beside the QA export, not over it)."""
    return f"{recipe}-examples" if recipe in RESERVED else recipe


COLUMNS = ("example_id", "recipe", "unit_id", "group", "doc_ids", "messages", "fields")
FEATURES = datasets.Features(
    {
        "example_id": datasets.Value("string"),
        "recipe": datasets.Value("string"),
        "unit_id": datasets.Value("string"),
        "group": datasets.Value("string"),
        "doc_ids": datasets.List(datasets.Value("string")),
        "messages": datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")}),
        "fields": datasets.Value("string"),
    }
)


class RoundTripError(RuntimeError):
    """The saved dataset did not load back equal to what was written."""


def example_row(example: Example) -> dict[str, Any]:
    """One exported row (the columns of :data:`COLUMNS`)."""
    dumped = example.model_dump()
    row = {name: dumped[name] for name in COLUMNS}
    row["messages"] = [{"role": m["role"], "content": m["content"]} for m in dumped["messages"]]
    return row


def by_split(examples: Iterable[Example], splits: Sequence[str] = ()) -> dict[str, list[Example]]:
    """Examples per split: ``train``, ``eval`` and ``splits`` first (even when empty), then any other split."""
    out: dict[str, list[Example]] = {s: [] for s in (*ALWAYS_PRESENT_SPLITS, *splits)}
    for ex in examples:
        out.setdefault(ex.split or "train", []).append(ex)
    return out


def build_examples_dict(groups: dict[str, list[Example]]) -> datasets.DatasetDict:
    """A ``DatasetDict`` with one split per key of ``groups``."""
    dataset_dict = {}
    for split, members in groups.items():
        rows = [example_row(ex) for ex in members]
        columns = {name: [r[name] for r in rows] for name in COLUMNS}
        dataset_dict[split] = datasets.Dataset.from_dict(columns, features=FEATURES)
    return datasets.DatasetDict(dataset_dict)


def verify_round_trip(target: Path, groups: dict[str, list[Example]]) -> None:
    """Load ``target`` with ``datasets.load_from_disk`` and compare every split and row with ``groups``."""
    loaded = datasets.load_from_disk(str(target))
    if set(loaded) != set(groups):
        raise RoundTripError(f"{target}: splits {sorted(loaded)} loaded back, {sorted(groups)} written")
    for split, members in groups.items():
        rows = loaded[split].to_list()
        expected = [example_row(ex) for ex in members]
        if rows != expected:
            bad = next((i for i, (a, b) in enumerate(zip(rows, expected, strict=False)) if a != b), len(rows))
            raise RoundTripError(f"{target}: split {split} differs from what was written (first at row {bad})")


def _write_chat(members: Sequence[Example], path: Path) -> int:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for ex in members:
            messages = [{"role": m.role, "content": m.content} for m in ex.messages]
            fh.write(json.dumps({"messages": messages}, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return len(members)


def export_examples(
    examples: Sequence[Example], out_dir: Path, recipe: str, splits: Sequence[str] = ()
) -> tuple[datasets.DatasetDict, Path, dict[str, tuple[Path, int]]]:
    """Save ``examples`` under ``out_dir/<recipe>`` (see the module) and check they load back.

    Returns the ``DatasetDict``, its folder, and split -> (chat JSONL path, lines). The folder is replaced only when
    doctune created it (:mod:`doctune.owned`).
    """
    if not recipe or "/" in recipe:
        raise ValueError(f"recipe name {recipe!r} cannot be an export folder")
    folder = export_folder(recipe)
    groups = by_split(examples, splits)
    dataset_dict = build_examples_dict(groups)
    out_dir = claim_dir(Path(out_dir), by="doctune export")
    target = check_dir(out_dir / folder)  # refuse before anything is deleted
    replace_dir(target)
    claim_dir(target, by="doctune export")
    # datasets writes no shard for an empty split, and load_from_disk then fails: ask for one
    num_shards = {split: 1 for split, ds in dataset_dict.items() if len(ds) == 0}
    dataset_dict.save_to_disk(str(target), num_shards=num_shards or None)
    verify_round_trip(target, groups)
    chat_dir = claim_dir(target / "chat", by="doctune export")
    chat = {
        split: (chat_dir / f"{split}.jsonl", _write_chat(members, chat_dir / f"{split}.jsonl"))
        for split, members in groups.items()
    }
    log.info(
        "exported %s (%s) -> %s",
        recipe,
        ", ".join(f"{split}: {len(ds)}" for split, ds in dataset_dict.items()),
        target,
    )
    return dataset_dict, target, chat
