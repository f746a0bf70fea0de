"""JSONL exports of curated items for fine-tuning tools: chat messages and alpaca records, one file per split.

Chat line: ``{"messages": [system?, user (question), assistant (answer)], "split": ..., "item_id": ...}``
(the system message is left out when the system prompt is empty).
Alpaca line: ``{"instruction": question, "input": "", "output": answer, "split": ..., "item_id": ...}``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from doctune.owned import check_dir, check_file, claim_dir
from doctune.records import DatasetItem

log = logging.getLogger(__name__)

#: splits in the order they are listed; unknown split names follow, sorted
SPLIT_ORDER = ("train", "eval", "rephrased_eval", "rephrased_train", "mirror", "manual")
#: splits exported even when they hold no item
ALWAYS_PRESENT_SPLITS = ("train", "eval")
#: export format -> folder under the export directory
JSONL_FORMATS = ("chat", "alpaca")


def ordered_splits(splits: Iterable[str]) -> list[str]:
    """Known splits in ``SPLIT_ORDER``, then the others alphabetically."""
    present = set(splits)
    return [s for s in SPLIT_ORDER if s in present] + sorted(present - set(SPLIT_ORDER))


def chat_record(item: DatasetItem, system_prompt: str) -> dict[str, Any]:
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages += [{"role": "user", "content": item.question}, {"role": "assistant", "content": item.answer}]
    return {"messages": messages, "split": item.split, "item_id": item.item_id}


def alpaca_record(item: DatasetItem) -> dict[str, Any]:
    return {
        "instruction": item.question,
        "input": "",
        "output": item.answer,
        "split": item.split,
        "item_id": item.item_id,
    }


def _write_lines(records: Iterable[dict[str, Any]], path: Path) -> int:
    """Write JSON lines atomically (temp file + rename); returns the number of lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    os.replace(tmp, path)
    return n


def write_chat_jsonl(items: Sequence[DatasetItem], path: Path, system_prompt: str) -> int:
    """Write ``items`` to one chat-format JSONL file (one line per item, in order); returns the line count."""
    return _write_lines((chat_record(item, system_prompt) for item in items), Path(path))


def write_alpaca_jsonl(items: Sequence[DatasetItem], path: Path) -> int:
    """Write ``items`` to one alpaca-format JSONL file (one line per item, in order); returns the line count."""
    return _write_lines((alpaca_record(item) for item in items), Path(path))


def write_jsonl_splits(
    items: Sequence[DatasetItem], out_dir: Path, system_prompt: str
) -> dict[str, dict[str, tuple[Path, int]]]:
    """Write ``out_dir/chat/<split>.jsonl`` and ``out_dir/alpaca/<split>.jsonl`` for every split.

    Train and eval files are written even when empty; stale ``*.jsonl`` files of earlier exports are removed.
    Returns format -> split -> (path, lines). ``out_dir``, ``chat/`` and ``alpaca/`` must be new, empty or
    created by doctune (they carry its marker, see :mod:`doctune.owned`); otherwise nothing is deleted and
    :class:`doctune.owned.NotOwnedError` is raised.
    """
    by_split: dict[str, list[DatasetItem]] = {split: [] for split in ALWAYS_PRESENT_SPLITS}
    for item in items:
        by_split.setdefault(item.split, []).append(item)
    out_dir = claim_dir(Path(out_dir), by="doctune export")
    for fmt in JSONL_FORMATS:  # refuse before anything is written or deleted
        check_dir(out_dir / fmt)
    folders = {fmt: claim_dir(out_dir / fmt, by="doctune export") for fmt in JSONL_FORMATS}
    out: dict[str, dict[str, tuple[Path, int]]] = {}
    for fmt, folder in folders.items():
        for old in folder.glob("*.jsonl"):
            check_file(old).unlink()
        out[fmt] = {}
        for split in ordered_splits(by_split):
            path = folder / f"{split}.jsonl"
            if fmt == "chat":
                n = write_chat_jsonl(by_split[split], path, system_prompt)
            else:
                n = write_alpaca_jsonl(by_split[split], path)
            out[fmt][split] = (path, n)
        log.info("wrote %s JSONL (%s) -> %s", fmt, ", ".join(f"{s}: {n}" for s, (_, n) in out[fmt].items()), folder)
    return out
