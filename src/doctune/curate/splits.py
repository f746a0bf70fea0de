"""Train/eval splits stratified by cluster (and difficulty band when counts allow), the mirror
sample of train items, and the user's manual set."""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections import defaultdict
from pathlib import Path

from doctune.records import DatasetItem
from doctune.textmatch import content_words, numbers, recall, words


class ManualSetError(Exception):
    """The manual set cannot be read; the message names the file and the reason."""


def difficulty_band(difficulty: int) -> str:
    return "easy" if difficulty <= 3 else "medium" if difficulty <= 6 else "hard"


def _allocate(sizes: dict[tuple, int], total: int) -> dict[tuple, int]:
    """Eval items per stratum, proportional to stratum size (largest remainder), summing to ``total``."""
    n = sum(sizes.values())
    exact = {k: total * s / n for k, s in sizes.items()}
    out = {k: int(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: (exact[k] - out[k], str(k)), reverse=True)[: total - sum(out.values())]:
        out[k] += 1
    return out


def split_train_eval(
    items: list[DatasetItem], eval_share: float, eval_size: int | None, seed: int
) -> tuple[list[DatasetItem], list[DatasetItem], str]:
    """(train, eval, strata used). Strata are cluster x difficulty band when every such stratum has at
    least two items, else clusters alone. Reproducible for a seed, independent of input order."""
    if len(items) < 2:
        return list(items), [], "none"
    target = eval_size if eval_size is not None else max(1, round(len(items) * eval_share))
    target = min(target, len(items) - 1)
    fine: dict[tuple, list[DatasetItem]] = defaultdict(list)
    for item in items:
        fine[(item.cluster, difficulty_band(item.difficulty))].append(item)
    if min(len(v) for v in fine.values()) >= 2:
        strata, used = fine, "cluster x difficulty"
    else:
        strata = defaultdict(list)
        for item in items:
            strata[(item.cluster,)].append(item)
        used = "cluster"
    quotas = _allocate({k: len(v) for k, v in strata.items()}, target)
    eval_ids: set[str] = set()
    for key in sorted(strata, key=str):
        members = sorted(strata[key], key=lambda i: i.item_id)
        rng = random.Random(f"{seed}:{key}")
        eval_ids.update(i.item_id for i in rng.sample(members, quotas[key]))
    train = [i.model_copy(update={"split": "train"}) for i in items if i.item_id not in eval_ids]
    evaluation = [i.model_copy(update={"split": "eval"}) for i in items if i.item_id in eval_ids]
    return train, evaluation, used


def mirror_sample(train: list[DatasetItem], size: int, seed: int) -> list[DatasetItem]:
    """Copies of ``size`` train items (same ids) in the ``mirror`` split: does the model recall what it saw?"""
    ordered = sorted(train, key=lambda i: i.item_id)
    chosen = random.Random(f"{seed}:mirror").sample(ordered, min(size, len(ordered)))
    return [i.model_copy(update={"split": "mirror"}) for i in sorted(chosen, key=lambda i: i.item_id)]


def rephrase_sample(train: list[DatasetItem], size: int, seed: int) -> list[DatasetItem]:
    """The ``size`` train items whose questions are reworded into ``rephrased_train`` (reproducible per seed)."""
    ordered = sorted(train, key=lambda i: i.item_id)
    chosen = random.Random(f"{seed}:rephrased_train").sample(ordered, min(size, len(ordered)))
    return sorted(chosen, key=lambda i: i.item_id)


def reworded_copy(item: DatasetItem, question: str, split: str) -> DatasetItem:
    """``item`` asked in other words, in ``split``: the answer, criteria and citations are the taught ones."""
    new_id = hashlib.sha256(f"{split}\n{item.item_id}".encode()).hexdigest()[:16]
    return item.model_copy(
        update={
            "item_id": new_id,
            "question": question,
            "source_item_id": item.item_id,
            "source": "rephrased",
            "split": split,
        }
    )


def reworded_problem(original: str, reworded: str, answer: str) -> str | None:
    """Why a reworded question cannot test a taught fact (None: it can): identical wording, a question that
    gives the answer away, or one that no longer asks about the same subject."""
    old, new = words(original), words(reworded)
    if not reworded.strip().endswith("?"):
        return "not a question"
    if new == old or (set(new) <= set(old) and len(new) >= len(old) - 1):
        return "same wording"
    leaked = (content_words(answer) - content_words(original)) & content_words(reworded)
    if leaked or (numbers(answer) - numbers(original)) & numbers(reworded):
        return "gives the answer away"
    if recall(content_words(original), content_words(reworded)) < 0.5:
        return "asks about something else"
    return None


def _manual_rows(path: Path) -> list[dict]:
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return list(csv.DictReader(fh))
    if path.suffix.lower() in (".jsonl", ".json"):
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ManualSetError(f"{path}: line {n} is not valid JSON ({exc.msg})") from None
        return rows
    raise ManualSetError(f"{path}: unsupported format {path.suffix!r} (use .csv or .jsonl)")


def load_manual_set(path: Path) -> list[DatasetItem]:
    """Rows with question, answer and criteria (or evaluation_criteria) as the ``manual`` split."""
    if not path.exists():
        raise ManualSetError(f"{path}: no such file")
    items = []
    for n, row in enumerate(_manual_rows(path), 1):
        criteria = row.get("criteria") or row.get("evaluation_criteria")
        missing = [
            k
            for k, v in (("question", row.get("question")), ("answer", row.get("answer")), ("criteria", criteria))
            if not v
        ]
        if missing:
            raise ManualSetError(f"{path}: row {n} lacks {', '.join(missing)}")
        question = str(row["question"]).strip()
        items.append(
            DatasetItem(
                item_id="m-" + hashlib.sha256(question.encode()).hexdigest()[:14],
                kind="manual",
                unit_id="manual",
                doc_ids=[],
                chunk_ids=[],
                k=0,
                question=question,
                answer=str(row["answer"]).strip(),
                evaluation_criteria=str(criteria).strip(),
                difficulty=int(row.get("difficulty") or 5),
                category=str(row.get("category") or "manual"),
                citations=[],
                citations_verified=False,
                model="manual",
                source="manual",
                split="manual",
            )
        )
    if not items:
        raise ManualSetError(f"{path}: no rows")
    return items
