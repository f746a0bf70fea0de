"""The data of the models page: registry rows with their label filters, a model's training curves as an SVG drawn
server-side from the numbers the trainer logged (``log_history.json`` beside the weights, or a checkpoint's
``trainer_state.json``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from doctune.cli.models import LABEL_COLUMNS, matches_labels
from doctune.registry import ModelEntry
from doctune.workspace import Workspace

log = logging.getLogger(__name__)

GATE_FILTERS = ("passed", "failed", "none")
SERIES_COLORS = ("#3b5bdb", "#e8590c", "#2f9e44", "#ae3ec9", "#1098ad", "#f08c00")


def label_options(entries: Sequence[ModelEntry]) -> dict[str, list[str]]:
    """Every label key present (recipe, character, play first) with the values the entries have."""
    keys = {k for e in entries for k in e.labels}
    ordered = [k for k in LABEL_COLUMNS if k in keys] + sorted(keys - set(LABEL_COLUMNS))
    return {k: sorted({e.labels[k] for e in entries if e.labels.get(k)}, key=str.casefold) for k in ordered}


def gate_state(entry: ModelEntry) -> str:
    return "none" if entry.gate is None else "passed" if entry.gate.passed else "failed"


def filter_entries(entries: Sequence[ModelEntry], wanted: Mapping[str, str], gate: str = "") -> list[ModelEntry]:
    """The entries with every wanted label (as ``doctune models list --label`` matches them) and the gate state."""
    return [e for e in entries if matches_labels(e, dict(wanted)) and (not gate or gate_state(e) == gate)]


def _history_files(workspace: Workspace, entry: ModelEntry) -> list[Path]:
    root = workspace.root
    weights = root / entry.weights_path
    folders = [weights.parent, weights]
    if entry.items_path:
        folders.append((root / entry.items_path).parent)
    files = [f / "log_history.json" for f in folders] + [f / "trainer_state.json" for f in folders]
    for folder in folders:
        if folder.is_dir():
            checkpoints = sorted(folder.glob("checkpoint-*/trainer_state.json"), key=lambda p: p.stat().st_mtime)
            files += list(reversed(checkpoints))
    root_resolved = root.resolve()
    return [f for f in dict.fromkeys(files) if f.is_file() and f.resolve().is_relative_to(root_resolved)]


def training_history(workspace: Workspace, entry: ModelEntry) -> tuple[list[dict[str, Any]], str | None]:
    """The logged entries of the model's training run and the file they came from (relative to the workspace)."""
    for path in _history_files(workspace, entry):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("cannot read %s: %s", path, exc)
            continue
        history = data.get("log_history") if isinstance(data, dict) else data
        if isinstance(history, list) and history:
            return [h for h in history if isinstance(h, dict)], str(path.relative_to(workspace.root))
    return [], None


def loss_series(history: Sequence[Mapping[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """``{"train": [(step, loss)...], "<split>": [...]}`` from the trainer's log entries (as plot_losses reads them)."""
    series: dict[str, list[tuple[float, float]]] = {}
    for entry in history:
        step = entry.get("step")
        if not isinstance(step, int | float):
            continue
        for key, value in entry.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            if key == "loss" or (key.startswith("eval_") and key.endswith("loss")):
                name = (
                    "train" if key == "loss" else key.removeprefix("eval_").removesuffix("loss").rstrip("_") or "eval"
                )
                series.setdefault(name, []).append((float(step), float(value)))
    return series


def _ticks(low: float, high: float, n: int = 5) -> list[float]:
    if high <= low:
        return [low]
    return [low + (high - low) * i / (n - 1) for i in range(n)]


def curve_svg(series: Mapping[str, Sequence[tuple[float, float]]], width: int = 640, height: int = 260) -> dict | None:
    """What the template draws: polylines (``points`` strings of numbers), axis ticks and a legend; None when empty."""
    points = [p for s in series.values() for p in s]
    if not points:
        return None
    left, right, top, bottom = 52, 12, 10, 30
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad

    def sx(x: float) -> float:
        return round(left + (x - x0) / (x1 - x0) * (width - left - right), 2)

    def sy(y: float) -> float:
        return round(top + (y1 - y) / (y1 - y0) * (height - top - bottom), 2)

    lines = []
    for i, (name, pts) in enumerate(series.items()):
        coords = " ".join(f"{sx(x)},{sy(y)}" for x, y in pts)
        lines.append({"name": name, "points": coords, "color": SERIES_COLORS[i % len(SERIES_COLORS)],
                      "dots": [(sx(x), sy(y)) for x, y in pts] if len(pts) < 30 else [],
                      "last": pts[-1][1], "n": len(pts)})  # fmt: skip
    return {
        "width": width,
        "height": height,
        "left": left,
        "bottom": height - bottom,
        "right": width - right,
        "top": top,
        "lines": lines,
        "xticks": [(sx(x), f"{x:g}") for x in _ticks(x0, x1) if float(x).is_integer() or x1 - x0 < 10],
        "yticks": [(sy(y), f"{y:.3g}") for y in _ticks(y0, y1)],
    }


def model_row(entry: ModelEntry, current_id: str | None) -> dict[str, Any]:
    loss = entry.metrics.get("final_loss")
    return {
        "id": entry.id,
        "current": entry.id == current_id,
        "status": entry.status,
        "labels": entry.labels,
        "created": entry.created_at[:16].replace("T", " "),
        "base_model": entry.base_model,
        "method": entry.method,
        "final_loss": loss if isinstance(loss, int | float) else None,
        "gate": gate_state(entry),
        "gate_reason": entry.gate.reason if entry.gate else "",
        "parent": entry.parent,
    }
