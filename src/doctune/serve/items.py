"""The item index of the workbench: one table of every item of the workspace, for Browse and Review.

Built from the artifacts with pyarrow and pandas (cached per content of the artifacts it reads, see
:func:`item_index`):

* the QA family (``qa``, ``multihop``, ``rephrased``: :class:`~doctune.records.QAItem`) joined with the curated
  ``dataset`` (split, cluster, label, tags; an item may be in several splits) and ``duplicates``; dataset rows made
  at split time (rephrasings, the manual set) are items too;
* the :class:`~doctune.records.Example` rows of every ``examples_<recipe>`` joined with ``dataset_<recipe>`` (the
  split) and its recorded errors (examples the recipe's checks dropped), with the recipe's declared fields as
  ``field.<name>`` columns;
* the latest review of each item (``reviews``) and, for QA items, the uncertainty of the deterministic verifier:
  ``|answer_support - 0.75|`` (the smaller, the nearer the threshold).

:func:`filter_items` applies the filters with vectorised masks (:func:`doctune.serve.browse.page` cuts one page): a filtered page of
100k items takes a few milliseconds once the index is built (``bench/serve_items.py``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from doctune.grounding import AnswerSupport

log = logging.getLogger(__name__)

QA_SOURCES = ("qa", "multihop", "rephrased")
ANSWER_SUPPORT = 0.75
#: the outcome filter's values (an outcome is one of these, optionally followed by ": <reasons>")
OUTCOMES = ("kept", "duplicate", "flagged", "dropped", "not curated")
QA_COLUMNS = (
    "item_id", "recipe", "kind", "prompt", "answer", "doc_ids", "chunk_ids", "difficulty", "category", "grounding",
    "grounded", "uncertainty", "unit_id", "artifact", "row",
)  # fmt: skip
REVIEW_CHOICES = ("unreviewed", "reviewed", "approve", "reject", "edit")
FIELD_CHOICE_LIMIT = 60


@dataclass
class ItemIndex:
    """The table (``frame``, sorted by item id), where each item's full row is, and the filter choices."""

    frame: pd.DataFrame
    where: dict[str, tuple[str, int]]
    tables: dict[str, pa.Table]
    choices: dict[str, list[Any]] = field(default_factory=dict)
    field_choices: dict[str, list[str]] = field(default_factory=dict)
    uncertainty_order: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    search: pa.Array = field(default_factory=lambda: pa.array([], type=pa.string()))
    build_s: float = 0.0

    def row(self, item_id: str) -> tuple[str, dict[str, Any]] | None:
        """(artifact, the item's full row as a dict) or None."""
        hit = self.where.get(item_id)
        if hit is None:
            return None
        name, i = hit
        return name, self.tables[name].slice(i, 1).to_pylist()[0]


def source_artifacts(manifest_names: list[str] | set[str]) -> list[str]:
    """The artifacts the index reads (those present)."""
    names = set(manifest_names)
    wanted = [*QA_SOURCES, "dataset", "duplicates", "reviews"]
    wanted += sorted(n for n in names if n.startswith("examples_"))
    wanted += sorted(n for n in names if n.startswith("dataset_") and n != "dataset_qa")
    return [n for n in wanted if n in names]


def item_index(ctx) -> ItemIndex:
    """The index of ``ctx``'s workspace, rebuilt when one of the artifacts it reads changes."""
    names = source_artifacts(ctx.workspace.manifest().keys())
    version = (tuple(names), ctx.artifact_sha(*names))
    return ctx.cached("items", version, lambda: build_index(ctx.workspace, ctx.config, names))


# -- building ---------------------------------------------------------------------------------
def _joined(table: pa.Table, column: str, sep: str) -> list[str]:
    if column not in table.column_names:
        return [""] * table.num_rows
    values = table.column(column)
    if values.type != pa.list_(pa.string()):
        values = values.cast(pa.list_(pa.string()))
    return pc.fill_null(pc.binary_join(values, sep), "").to_pylist()


def _quotes(table: pa.Table) -> list[str]:
    """Each row's citation quotes joined by spaces."""
    if "citations" not in table.column_names or table.num_rows == 0:
        return [""] * table.num_rows
    cites = table.column("citations").combine_chunks()
    if cites.null_count:
        cites = pc.fill_null(cites, pa.scalar([], type=cites.type))
    quotes = cites.flatten().field("quote")
    lists = pa.ListArray.from_arrays(cites.offsets, quotes)
    return pc.fill_null(pc.binary_join(lists, " "), "").to_pylist()


def _qa_frame(name: str, table: pa.Table, support: AnswerSupport) -> pd.DataFrame:
    col = lambda c: table.column(c).to_pylist()  # noqa: E731
    grounding = _joined(table, "grounding", ", ")
    verified = col("citations_verified")
    questions, answers, quotes = col("question"), col("answer"), _quotes(table)
    unc = [
        abs(support(q, a, c) - ANSWER_SUPPORT) if c else np.nan
        for q, a, c in zip(questions, answers, quotes, strict=True)
    ]
    return pd.DataFrame(
        {
            "item_id": col("item_id"),
            "recipe": col("kind"),
            "kind": col("kind"),
            "prompt": questions,
            "answer": answers,
            "doc_ids": _joined(table, "doc_ids", " "),
            "chunk_ids": _joined(table, "chunk_ids", " "),
            "difficulty": col("difficulty"),
            "category": col("category"),
            "grounding": grounding,
            "grounded": [(not g) if (g or v) else None for g, v in zip(grounding, verified, strict=True)],
            "uncertainty": unc,
            "unit_id": col("unit_id"),
            "artifact": name,
            "row": np.arange(table.num_rows),
        }
    )


def _dataset_info(table: pa.Table) -> pd.DataFrame:
    """item_id -> splits (",a,b," for matching), cluster, cluster label, tags."""
    df = pd.DataFrame(
        {
            "item_id": table.column("item_id").to_pylist(),
            "split": table.column("split").to_pylist(),
            "cluster": table.column("cluster").to_pylist(),
            "cluster_label": table.column("cluster_label").to_pylist(),
            "tags": _joined(table, "tags", ", "),
        }
    )
    grouped = df.groupby("item_id", sort=False)
    info = grouped.agg({"cluster": "first", "cluster_label": "first", "tags": "first"})
    info["split"] = grouped["split"].agg(lambda s: ",".join(dict.fromkeys(s)))
    return info


def _last(messages: list[dict], role: str) -> str:
    return next((m["content"] for m in reversed(messages or []) if m["role"] == role), "")


def _field_text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _examples_frame(ws, config, name: str, table: pa.Table) -> tuple[pd.DataFrame, list[str]]:
    """An ``examples_<recipe>`` artifact as index rows (and the recipe's declared field names)."""
    recipe_name = name.removeprefix("examples_")
    declared: list[str] = []
    try:
        from doctune.recipes import get_recipe

        declared = list(get_recipe(recipe_name, config).fields_model.model_fields)
    except Exception as exc:
        log.warning("items: recipe %r not loadable (%s); showing its stored fields", recipe_name, exc)
    messages = table.column("messages").to_pylist()
    fields = [json.loads(f or "{}") for f in table.column("fields").to_pylist()]
    if not declared:
        declared = list(dict.fromkeys(k for f in fields for k in f))
    ids = table.column("example_id").to_pylist()
    df = pd.DataFrame(
        {
            "item_id": ids,
            "recipe": recipe_name,
            "kind": "example",
            "prompt": [_last(m, "user") for m in messages],
            "answer": [_last(m, "assistant") for m in messages],
            "doc_ids": _joined(table, "doc_ids", " "),
            "chunk_ids": "",
            "difficulty": np.nan,
            "category": "",
            "grounding": "",
            "grounded": None,
            "uncertainty": np.nan,
            "unit_id": table.column("unit_id").to_pylist(),
            "artifact": name,
            "row": np.arange(table.num_rows),
        }
    )
    for fname in declared:
        df[f"field.{fname}"] = [_field_text(f.get(fname)) for f in fields]
    split = {}
    dataset = f"dataset_{recipe_name}"
    manifest = ws.manifest()
    if dataset in manifest and ws.artifact_path(dataset).exists():
        dt = pq.read_table(ws.artifact_path(dataset), columns=["example_id", "split"])
        for eid, s in zip(dt.column("example_id").to_pylist(), dt.column("split").to_pylist(), strict=True):
            split[eid] = f"{split[eid]},{s}" if eid in split else s
        dropped = {e.get("example_id"): e.get("reason", "") for e in manifest[dataset].errors}
        df["outcome"] = [
            "kept" if i in split else f"dropped: {dropped[i]}" if i in dropped else "not curated" for i in ids
        ]
    else:
        df["outcome"] = "not curated"
    df["split"] = [split.get(i, "") for i in ids]
    return df, declared


def _reviews(ws) -> dict[str, Any]:
    try:
        from doctune.curate.reviews import effective_reviews, read_reviews
    except ImportError:
        return {}
    return effective_reviews(read_reviews(ws))


def build_index(ws, config, names: list[str] | None = None) -> ItemIndex:
    """Read the artifacts ``names`` (default: :func:`source_artifacts`) into an :class:`ItemIndex`."""
    start = time.perf_counter()
    manifest = ws.manifest()
    names = names if names is not None else source_artifacts(manifest.keys())
    tables = {n: pq.read_table(ws.artifact_path(n)) for n in names if n != "reviews"}
    support = AnswerSupport()
    frames = [_qa_frame(n, tables[n], support) for n in QA_SOURCES if n in tables]
    qa = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame({c: pd.Series(dtype=object) for c in QA_COLUMNS})
    )
    qa = qa.drop_duplicates("item_id", keep="first")
    dataset_ids: set[str] = set()
    if "dataset" in tables:
        ds = tables["dataset"]
        info = _dataset_info(ds)
        dataset_ids = set(info.index)
        known = set(qa["item_id"])
        extra = [i for i, iid in enumerate(ds.column("item_id").to_pylist()) if iid not in known]
        if extra:  # rephrasings and manual items made at split time
            sub = ds.take(extra)
            more = _qa_frame("dataset", sub, support)
            more["row"] = extra
            more["recipe"] = sub.column("source").to_pylist()
            qa = pd.concat([qa, more.drop_duplicates("item_id")], ignore_index=True)
        qa = qa.join(info, on="item_id")
    else:
        qa = qa.assign(split="", cluster=-1, cluster_label="", tags="")
    duplicates = set(tables["duplicates"].column("item_id").to_pylist()) if "duplicates" in tables else set()
    in_ds = qa["item_id"].isin(dataset_ids)
    outcome = np.where(in_ds, "kept", np.where(qa["item_id"].isin(duplicates), "duplicate", "not curated"))
    flagged = (~in_ds) & (outcome != "duplicate") & (qa["grounding"] != "")
    qa["outcome"] = np.where(flagged, "flagged: " + qa["grounding"], outcome)
    parts = [qa]
    field_names: dict[str, list[str]] = {}
    for n in names:
        if n.startswith("examples_"):
            df, declared = _examples_frame(ws, config, n, tables[n])
            parts.append(df)
            field_names[n.removeprefix("examples_")] = declared
    frame = pd.concat(parts, ignore_index=True).drop_duplicates("item_id", keep="first")
    frame = frame.sort_values("item_id", kind="stable").reset_index(drop=True)
    frame["split"] = frame["split"].fillna("")
    frame["cluster"] = frame["cluster"].fillna(-1).astype(int)
    for c in ("cluster_label", "tags", "category", "grounding"):
        frame[c] = frame[c].fillna("")
    reviews = _reviews(ws) if "reviews" in names else {}
    frame["review"] = [getattr(reviews.get(i), "decision", "") for i in frame["item_id"]]
    frame["outcome_kind"] = frame["outcome"].str.split(":").str[0]
    field_cols = [c for c in frame.columns if c.startswith("field.")]
    text = frame["item_id"] + " " + frame["prompt"] + " " + frame["answer"] + " " + frame["category"]
    text = text + " " + frame["cluster_label"] + " " + frame["tags"]
    for c in field_cols:
        frame[c] = frame[c].fillna("")
        text = text + " " + frame[c]
    search = pa.array(text.str.lower().tolist(), type=pa.string())
    frame["splits_key"] = ("," + frame["split"] + ",").astype("string[pyarrow]")
    frame["chunks_key"] = (" " + frame["chunk_ids"].fillna("") + " ").astype("string[pyarrow]")
    where = {iid: (a, int(r)) for iid, a, r in zip(frame["item_id"], frame["artifact"], frame["row"], strict=True)}
    unc = frame["uncertainty"].to_numpy(dtype=float)
    order = np.lexsort((np.arange(len(unc)), np.isnan(unc), np.nan_to_num(unc, nan=np.inf)))
    index = ItemIndex(frame=frame, where=where, tables=tables, uncertainty_order=order, search=search)
    index.choices = _choices(frame)
    index.field_choices = _field_choices(frame, field_names)
    index.build_s = time.perf_counter() - start
    log.info("item index: %d items from %s in %.2fs", len(frame), ", ".join(names), index.build_s)
    return index


def _choices(frame: pd.DataFrame) -> dict[str, list[Any]]:
    splits = sorted({s for v in frame["split"].unique() for s in v.split(",") if s})
    clusters = frame.loc[frame["cluster"] >= 0, ["cluster", "cluster_label"]].drop_duplicates("cluster")
    return {
        "recipe": sorted(frame["recipe"].dropna().unique().tolist()),
        "outcome": [o for o in OUTCOMES if o in set(frame["outcome_kind"].unique())],
        "difficulty": sorted(int(d) for d in frame["difficulty"].dropna().unique()),
        "category": sorted(c for c in frame["category"].unique() if c),
        "cluster": sorted((int(c), str(lbl)) for c, lbl in clusters.itertuples(index=False)),
        "split": splits,
        "review": list(REVIEW_CHOICES),
        "grounded": ["yes", "no", "unknown"],
    }


def _field_choices(frame: pd.DataFrame, field_names: dict[str, list[str]]) -> dict[str, list[str]]:
    """Declared fields with few short distinct values become select filters (``field.<name>``)."""
    out: dict[str, list[str]] = {}
    for name in dict.fromkeys(f for names in field_names.values() for f in names):
        values = frame[f"field.{name}"].dropna().unique()
        values = [v for v in values if v]
        if 0 < len(values) <= FIELD_CHOICE_LIMIT and max(len(v) for v in values) <= 80:
            out[name] = sorted(values)
    return out


# -- filtering --------------------------------------------------------------------------------
def filter_items(
    index: ItemIndex,
    outcome: str | None = None,
    grounded: str | bool | None = None,
    difficulty: int | str | None = None,
    category: str | None = None,
    cluster: int | str | None = None,
    split: str | None = None,
    recipe: str | None = None,
    review: str | None = None,
    q: str | None = None,
    order: str = "id",
    fields: dict[str, str] | None = None,
    chunk_id: str | None = None,
) -> pd.DataFrame:
    """The items matching every given filter (empty or None: no filter), ordered by id or by uncertainty."""
    frame = index.frame
    mask = np.ones(len(frame), dtype=bool)

    def eq(column: str, value: Any) -> None:
        nonlocal mask
        mask &= (frame[column] == value).to_numpy()

    if outcome:
        eq("outcome_kind", outcome)
    if grounded not in (None, ""):
        g = frame["grounded"]
        if grounded in (True, "yes", "true"):
            mask &= (g == True).to_numpy()  # noqa: E712 -- object column of True/False/None
        elif grounded in (False, "no", "false"):
            mask &= (g == False).to_numpy()  # noqa: E712
        else:
            mask &= g.isna().to_numpy()
    if difficulty not in (None, ""):
        eq("difficulty", float(difficulty))
    if category:
        eq("category", category)
    if cluster not in (None, ""):
        eq("cluster", int(cluster))
    if split:
        mask &= frame["splits_key"].str.contains(f",{split},", regex=False).to_numpy(dtype=bool)
    if recipe:
        eq("recipe", recipe)
    if review == "unreviewed":
        eq("review", "")
    elif review == "reviewed":
        mask &= (frame["review"] != "").to_numpy()
    elif review:
        eq("review", review)
    for name, value in (fields or {}).items():
        if value and f"field.{name}" in frame.columns:
            eq(f"field.{name}", value)
    if chunk_id:
        mask &= frame["chunks_key"].str.contains(f" {chunk_id} ", regex=False).to_numpy(dtype=bool)
    if q and q.strip():  # last, on the rows the other filters left: the substring search is the costly part
        rows = np.flatnonzero(mask)
        texts = index.search if len(rows) == len(frame) else index.search.take(pa.array(rows))
        hits = pc.match_substring(texts, q.strip().lower()).to_numpy(zero_copy_only=False)
        mask = np.zeros(len(frame), dtype=bool)
        mask[rows[hits]] = True
    if order == "uncertainty":
        chosen = index.uncertainty_order[mask[index.uncertainty_order]]
        return frame.iloc[chosen]
    return frame[mask]
