"""Writers of an evaluation report (the dict ``evaluate_models`` returns): JSON, a markdown table for the
terminal and a standalone HTML page with an accuracy bar chart (plotly, JS inlined so it works offline)."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def write_json(report: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``report`` as indented JSON (NaN-free: ``evaluate_models`` stores missing numbers as null)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
    return out


def _fmt(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def _ci_text(stat: Mapping[str, Any], signed: bool = False) -> str:
    if stat.get("low") is None:
        return "-"
    return f"[{_fmt(stat['low'], signed)}, {_fmt(stat['high'], signed)}]"


def summary_rows(report: Mapping[str, Any]) -> list[list[str]]:
    """One row per model and split: model, split, n, accuracy, CI, token F1, embedding similarity, failures."""
    rows = []
    for model in report["models"]:
        for split in report["splits"]:
            res = report["results"][model][split]
            acc = res["accuracy"]
            rows.append(
                [
                    model,
                    split,
                    str(res["n"]),
                    _fmt(acc["mean"]),
                    _ci_text(acc),
                    _fmt(res["token_f1"]["mean"]),
                    _fmt(res["embedding_similarity"]["mean"]),
                    f"{res['n_answer_errors']}/{res['n_judge_failures']}",
                ]
            )
    return rows


def comparison_rows(report: Mapping[str, Any]) -> list[list[str]]:
    """One row per comparison: split, metric, base, tuned, base mean, tuned mean, diff, CI, n."""
    return [
        [
            c["split"],
            c["metric"],
            c["base"],
            c["tuned"],
            _fmt(c["base_mean"]),
            _fmt(c["tuned_mean"]),
            _fmt(c["diff"], True),
            _ci_text(c, True),
            str(c["n"]),
        ]
        for c in report.get("comparisons", [])
    ]


SUMMARY_HEADER = ["model", "split", "n", "accuracy", "CI", "token F1", "emb. sim.", "errors (answer/judge)"]
COMPARISON_HEADER = ["split", "metric", "base model", "tuned model", "base score", "tuned score", "diff", "CI", "n"]


def _md(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_table(report: Mapping[str, Any]) -> str:
    """The report's summary (and comparisons, when any) as markdown tables."""
    level = round(100 * report["settings"]["confidence"])
    parts = []
    if grading := report.get("grading"):
        used = grading.get("used") or "nobody: accuracy is not graded"
        parts.append(f"Graded by {used}: {grading.get('why', '')}.")
    parts += [f"Accuracy = mean grader score (correct 1, partially 0.5, incorrect 0); CI = {level}% bootstrap.", ""]
    parts.append(_md(SUMMARY_HEADER, summary_rows(report)))
    if cmp := comparison_rows(report):
        parts += ["", "Paired differences (tuned - base):", "", _md(COMPARISON_HEADER, cmp)]
    return "\n".join(parts)


def accuracy_figure(report: Mapping[str, Any]) -> Any:
    """A plotly grouped bar chart: accuracy per split, one bar per model, CI as error bars."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for model in report["models"]:
        stats = [report["results"][model][split]["accuracy"] for split in report["splits"]]
        means = [s["mean"] for s in stats]
        fig.add_trace(
            go.Bar(
                name=model,
                x=list(report["splits"]),
                y=means,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [(s["high"] - s["mean"]) if s["mean"] is not None else 0 for s in stats],
                    "arrayminus": [(s["mean"] - s["low"]) if s["mean"] is not None else 0 for s in stats],
                },
            )
        )
    level = round(100 * report["settings"]["confidence"])
    fig.update_layout(
        barmode="group",
        title=f"Accuracy per split ({level}% bootstrap CI)",
        yaxis={"title": "accuracy", "range": [0, 1.05]},
        xaxis={"title": "split"},
        template="plotly_white",
    )
    return fig


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_html(report: Mapping[str, Any], path: str | Path) -> Path:
    """A standalone page: the accuracy chart (plotly JS inlined, no network needed) and the summary tables."""
    chart = accuracy_figure(report).to_html(full_html=False, include_plotlyjs=True)
    sections = [
        "<h1>doctune evaluation</h1>",
        f"<p>Judge: <code>{html.escape(str(report.get('judge')))}</code></p>",
        chart,
        "<h2>Summary</h2>",
        _html_table(SUMMARY_HEADER, summary_rows(report)),
    ]
    if cmp := comparison_rows(report):
        sections += ["<h2>Paired differences (tuned - base)</h2>", _html_table(COMPARISON_HEADER, cmp)]
    for model in report["models"]:
        for split in report["splits"]:
            res = report["results"][model][split]
            rows = [[k, str(v["n"]), _fmt(v["mean"]), _ci_text(v)] for k, v in res["by_category"].items()]
            rows += [[k, str(v["n"]), _fmt(v["mean"]), _ci_text(v)] for k, v in res["by_difficulty"].items()]
            sections += [
                f"<h3>{html.escape(model)} / {html.escape(split)}: by category and difficulty</h3>",
                _html_table(["group", "n", "accuracy", "CI"], rows),
            ]
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
    )
    page = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>doctune evaluation</title>'
        f"<style>{style}</style></head><body>{''.join(sections)}</body></html>\n"
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
