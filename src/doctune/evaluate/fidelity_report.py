"""Writers of the fidelity benchmark (the dict :func:`doctune.evaluate.fidelity.fidelity_report` returns): a
markdown summary for the terminal and a standalone HTML page with every section (JSON: ``writers.write_json``)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from doctune.evaluate.style import STYLE_METRICS


def _num(stat: Mapping[str, Any] | None, key: str = "mean", signed: bool = False) -> str:
    value = stat.get(key) if stat else None
    if value is None:
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _ci(stat: Mapping[str, Any] | None, signed: bool = False) -> str:
    if not stat or stat.get("low") is None:
        return "-"
    return f"{_num(stat, 'mean', signed)} [{_num(stat, 'low', signed)}, {_num(stat, 'high', signed)}]"


def classifier_rows(report: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for play, c in report["classifier"].items():
        if "error" in c:
            rows.append([play, ", ".join(c["classes"]), "-", c["error"], "-", "-", "-"])
            continue
        chance = c["chance"]
        rows.append(
            [
                play,
                ", ".join(c["classes"]),
                str(c["n_test"]),
                _ci(c["accuracy"]),
                "-" if c["balanced_accuracy"] is None else f"{c['balanced_accuracy']:.3f}",
                "-" if chance["majority_share"] is None else f"{chance['majority_share']:.3f}",
                f"{chance['uniform']:.3f}",
            ]
        )
    return rows


CLASSIFIER_HEADER = ["play", "classes", "n held-out", "accuracy [CI]", "balanced acc.", "majority share", "1/n"]
SUMMARY_HEADER = [
    "student",
    "character",
    "n",
    "ppl base",
    "ppl own",
    "own lowest",
    "attributed: real",
    "base",
    "own",
    "in character (own)",
]
PAIR_HEADER = ["student", "character", "other adapter", "same play", "NLL other - own [CI]", "verdict"]


def summary_rows(report: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for student in report["students"]:
        for name, c in student["characters"].items():
            if "error" in c:
                rows.append([student["name"], name, "0", *["-"] * 6, c["error"]])
                continue
            ppl, att, ic = c["perplexity"], c["attribution"], c["in_character"]
            rows.append(
                [
                    student["name"],
                    name,
                    str(ppl["n"]),
                    f"{ppl['models']['base']['perplexity']:.2f}",
                    f"{ppl['models'][name]['perplexity']:.2f}",
                    "yes" if ppl["own_lowest"] else "NO",
                    _ci(att.get("real")) if "error" not in att else att["error"],
                    _ci(att.get("base")),
                    _ci(att.get("own")),
                    _ci(ic.get("own")) if ic["scored"] else "not scored",
                ]
            )
    return rows


def pair_rows(report: Mapping[str, Any]) -> list[list[str]]:
    return [
        [student["name"], name, v["other"], "yes" if v["same_play"] else "no", _ci(v["diff"], True), v["verdict"]]
        for student in report["students"]
        for name, c in student["characters"].items()
        if "perplexity" in c
        for v in c["perplexity"]["versus"]
    ]


def style_rows(report: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for student in report["students"]:
        for name, c in student["characters"].items():
            for label, metrics in c.get("style", {}).items():
                rows.append([student["name"], name, label, *(_ci(metrics[m]) for m in STYLE_METRICS)])
    return rows


STYLE_HEADER = ["student", "character", "texts", *STYLE_METRICS]


def _md(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def fidelity_markdown(report: Mapping[str, Any]) -> str:
    """The classifier, the per-character summary and the pairwise perplexity verdicts as markdown."""
    level = round(100 * report["settings"]["confidence"])
    parts = [
        f"Fidelity on the {report['split']} split (held-out scenes); {level}% bootstrap CIs.",
        "",
        f"Speaker classifier (trained on real speeches of the training scenes, from the {report['speeches_source']}):",
        "",
        _md(CLASSIFIER_HEADER, classifier_rows(report)),
        "",
        "Per character (ppl = perplexity of its real held-out speeches; attributed = share of texts the classifier "
        "gives to the character):",
        "",
        _md(SUMMARY_HEADER, summary_rows(report)),
        "",
        "Own adapter against every other (NLL other - own > 0: own fits its character better):",
        "",
        _md(PAIR_HEADER, pair_rows(report)),
    ]
    if not report["in_character"]["scored"]:
        parts += ["", f"In character: {report['in_character']['reason']}."]
    return "\n".join(parts)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def matrix_html(student: Mapping[str, Any]) -> str:
    """Rows: characters (their real speeches); columns: base and each adapter; cells: perplexity, own in bold."""
    chars = [c for c, v in student["characters"].items() if "perplexity" in v]
    if not chars:
        return "<p>No character has held-out speeches.</p>"
    columns = list(student["characters"][chars[0]]["perplexity"]["models"])
    rows = []
    for c in chars:
        cells = []
        for col in columns:
            value = student["characters"][c]["perplexity"]["models"][col]["perplexity"]
            text = html.escape("-" if value is None else f"{value:.2f}")
            cells.append(f"<td><b>{text}</b></td>" if col == c else f"<td>{text}</td>")
        rows.append(f"<tr><th>{html.escape(c)}</th>{''.join(cells)}</tr>")
    head = "".join(f"<th>{html.escape(col)}</th>" for col in columns)
    return f"<table><thead><tr><th>speeches of \\ model</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def write_fidelity_html(report: Mapping[str, Any], path: str | Path) -> Path:
    """A standalone page: classifier, summary, perplexity matrices, pairs, style, in-character, sample replies."""
    sections = [
        "<h1>doctune character fidelity</h1>",
        f"<p>Recipe <code>{html.escape(report['recipe'])}</code>, split {html.escape(report['split'])}; "
        f"speeches from the {html.escape(report['speeches_source'])}.</p>",
        "<h2>Speaker classifier</h2>",
        _table(CLASSIFIER_HEADER, classifier_rows(report)),
        "<h2>Summary</h2>",
        _table(SUMMARY_HEADER, summary_rows(report)),
    ]
    for student in report["students"]:
        sections += [f"<h2>Perplexity matrix: {html.escape(student['name'])}</h2>", matrix_html(student)]
    sections += [
        "<h2>Own adapter vs every other</h2>",
        _table(PAIR_HEADER, pair_rows(report)),
        "<h2>Style</h2>",
        _table(STYLE_HEADER, style_rows(report)),
        "<h2>In character (judge)</h2>",
        f"<p>{html.escape(report['in_character']['reason'])}</p>",
        "<h2>Sample replies</h2>",
    ]
    samples = [
        [student["name"], name, s["real"], s["base"], s["own"]]
        for student in report["students"]
        for name, c in student["characters"].items()
        for s in c.get("samples", [])
    ]
    sections.append(_table(["student", "character", "real", "base", "own"], samples))
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;"
        "vertical-align:top;white-space:pre-wrap}"
    )
    page = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>doctune fidelity</title>'
        f"<style>{style}</style></head><body>{''.join(sections)}</body></html>\n"
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
