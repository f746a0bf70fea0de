"""Writers of the conversation benchmark (the dict :func:`doctune.stages.evaluate_conversations.run` builds): a
markdown summary for the terminal and the README, PNG plots (matplotlib, Agg backend) with the CIs, and a
self-contained HTML page (the plots inlined) with every table and every transcript (JSON: ``writers.write_json``)."""

from __future__ import annotations

import base64
import html
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from doctune.evaluate.conversations import METRICS

log = logging.getLogger(__name__)


def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _ci(stat: Mapping[str, Any] | None, signed: bool = False) -> str:
    if not stat or stat.get("mean") is None:
        return "-"
    return f"{_num(stat['mean'], signed)} [{_num(stat['low'], signed)}, {_num(stat['high'], signed)}]"


def _metrics(report: Mapping[str, Any]) -> list[str]:
    """The metrics shown: all of :data:`METRICS`, the judge's only when it scored."""
    return [m for m in METRICS if m != "judge" or report["judge"]["scored"]]


def setting_header(report: Mapping[str, Any]) -> list[str]:
    return ["setting", "base model", "n", *(METRICS[m].label for m in _metrics(report))]


def setting_rows(report: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for s in report["settings"]:
        if not s["run"]:
            rows.append([s["name"], s.get("base_model") or "-", "0", f"not run: {s['reason']}"])
            continue
        stats = report["per_setting"][s["name"]]
        n = max((stats[m]["n"] for m in _metrics(report)), default=0)
        rows.append([s["name"], s["base_model"], str(n), *(_ci(stats[m]) for m in _metrics(report))])
    return rows


SWITCH_HEADER = ["switch", "component", "metric", "n", "reference", "switched", "with - without [CI]", "verdict"]


def switch_rows(report: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for sw in report["switches"]:
        if not sw["run"]:
            rows.append([sw["name"], sw["component"], "-", "0", "-", "-", "-", f"not run: {sw['reason']}"])
            continue
        for metric in _metrics(report):
            e = sw["effects"][metric]
            rows.append(
                [
                    sw["name"],
                    sw["component"],
                    METRICS[metric].label,
                    str(e["n"]),
                    _ci(e["reference"]),
                    _ci(e["switched"]),
                    _ci(e["effect"], signed=True),
                    e["verdict"],
                ]
            )
    return rows


def _md(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _judge_line(report: Mapping[str, Any]) -> str:
    judge = report["judge"]
    if judge["scored"]:
        return f"In character: scored by {judge.get('judge', 'the judge')} ({judge['reason']})."
    return f"In character: not scored: {judge['reason']}."


def conversations_markdown(report: Mapping[str, Any]) -> str:
    """The per-setting means, the switch effects and one plain sentence per switch, as markdown."""
    level = round(100 * report["confidence"])
    chance = report.get("attribution_chance")
    parts = [
        f"Conversation benchmark: {len(report['scenarios'])} scenarios, each run once per setting with a fixed seed; "
        f"means over scenarios with {level}% bootstrap CIs.",
        "",
        _md(setting_header(report), setting_rows(report)),
        "",
        f"Attribution chance (1/n characters, mean over scenarios): {_num(chance)}. Lower is better for voice "
        "collapse and repetition.",
        "",
        "What each switched component adds (with it - without it, paired by scenario):",
        "",
        _md(SWITCH_HEADER, switch_rows(report)),
        "",
        *[f"- {sw['summary']}" for sw in report["switches"]],
        "",
        _judge_line(report),
    ]
    return "\n".join(parts)


# -- plots ------------------------------------------------------------------------------------------------------------


def write_plots(report: Mapping[str, Any], folder: str | Path) -> dict[str, Path]:
    """``settings.png`` (each metric's mean per setting with its CI) and ``effects.png`` (each switch's effect with
    its CI, a line at 0); an empty dict when matplotlib is missing (the HTML then has no plots)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed (pip install 'doctune[curate]'): no plots")
        return {}
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    metrics = _metrics(report)
    ran = [s for s in report["settings"] if s["run"]]
    paths: dict[str, Path] = {}

    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        names, means, errs = [], [], [[], []]
        for s in ran:
            stat = report["per_setting"][s["name"]][metric]
            if stat["mean"] is None:
                continue
            names.append(s["name"])
            means.append(stat["mean"])
            errs[0].append(stat["mean"] - stat["low"])
            errs[1].append(stat["high"] - stat["mean"])
        ax.errorbar(range(len(names)), means, yerr=errs, fmt="o", capsize=4)
        ax.set_xticks(range(len(names)), names, rotation=40, ha="right", fontsize=8)
        better = "higher" if METRICS[metric].higher_is_better else "lower"
        ax.set_title(f"{METRICS[metric].label}\n({better} is better)", fontsize=9)
        if metric == "attribution" and report.get("attribution_chance") is not None:
            ax.axhline(report["attribution_chance"], color="grey", linestyle=":", label="chance")
            ax.legend(fontsize=7)
        if metric == "collapse":
            ax.axhline(0, color="grey", linestyle=":")
    fig.tight_layout()
    paths["settings"] = out / "settings.png"
    fig.savefig(paths["settings"], dpi=110)
    plt.close(fig)

    switches = [sw for sw in report["switches"] if sw["run"]]
    if switches:
        fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.4), squeeze=False)
        for ax, metric in zip(axes[0], metrics, strict=True):
            for i, sw in enumerate(switches):
                e = sw["effects"][metric]["effect"]
                if e["mean"] is None:
                    continue
                ax.errorbar(
                    [e["mean"]], [i], xerr=[[e["mean"] - e["low"]], [e["high"] - e["mean"]]], fmt="o", capsize=4
                )
            ax.axvline(0, color="grey", linestyle=":")
            ax.set_yticks(range(len(switches)), [sw["component"] for sw in switches], fontsize=8)
            ax.set_ylim(-0.5, len(switches) - 0.5)
            better = "> 0 helps" if METRICS[metric].higher_is_better else "< 0 helps"
            ax.set_title(f"{METRICS[metric].label}\nwith - without ({better})", fontsize=9)
        fig.tight_layout()
        paths["effects"] = out / "effects.png"
        fig.savefig(paths["effects"], dpi=110)
        plt.close(fig)
    return paths


# -- HTML -------------------------------------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<p><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}"></p>'


def _transcript(conv: Mapping[str, Any]) -> str:
    lines = []
    for t in conv["turns"]:
        boosted = f" <small>[{html.escape(', '.join(t['boosted_used']))}]</small>" if t.get("boosted_used") else ""
        lines.append(f"<b>{html.escape(t['speaker'])}</b>: {html.escape(t['text'])}{boosted}")
    summary = html.escape(f"{conv['setting']} / {conv['scenario']} (log {conv['log']})")
    return f"<details><summary>{summary}</summary><p>{'<br>'.join(lines)}</p></details>"


def write_conversations_html(report: Mapping[str, Any], path: str | Path, plots: Mapping[str, Path]) -> Path:
    """A standalone page: settings, switch effects, plots, the judge, scenarios, every conversation's metrics and
    transcript."""
    metrics = _metrics(report)
    sections = [
        "<h1>doctune conversation benchmark</h1>",
        f"<p>{len(report['scenarios'])} scenarios; every setting runs each scenario once with the scenario's seed; "
        f"{round(100 * report['confidence'])}% bootstrap CIs over scenarios. Run took "
        f"{report['timing']['seconds']:.0f} s ({_num(report['timing'].get('per_conversation_s'))} s per "
        "conversation).</p>",
        "<h2>Settings</h2>",
        _table(setting_header(report), setting_rows(report)),
        f"<p>Attribution chance (1/n): {_num(report.get('attribution_chance'))}.</p>",
        "<h2>What each switch adds</h2>",
        "<ul>" + "".join(f"<li>{html.escape(sw['summary'])}</li>" for sw in report["switches"]) + "</ul>",
        _table(SWITCH_HEADER, switch_rows(report)),
    ]
    sections += [_img(p) for p in plots.values() if Path(p).exists()]
    sections += [
        "<h2>Metrics</h2>",
        _table(
            ["metric", "better", "definition"],
            [
                [METRICS[m].label, "higher" if METRICS[m].higher_is_better else "lower", METRICS[m].description]
                for m in METRICS
            ],
        ),
        "<h2>In character (judge)</h2>",
        f"<p>{html.escape(_judge_line(report))}</p>",
        "<h2>Scenarios</h2>",
        _table(
            ["scenario", "title", "characters", "policy", "turns", "seed"],
            [
                [s["name"], s["title"], ", ".join(s["characters"]), s["policy"], str(s["turns"]), str(s["seed"])]
                for s in report["scenarios"]
            ],
        ),
        "<h2>Conversations</h2>",
        _table(
            ["setting", "scenario", "turns", "seconds", *(METRICS[m].label for m in metrics), "log"],
            [
                [
                    c["setting"],
                    c["scenario"],
                    str(len(c["turns"])),
                    f"{c['seconds']:.1f}",
                    *(_num(c["metrics"].get(m)) for m in metrics),
                    c["log"],
                ]
                for c in report["conversations"]
            ],
        ),
        "<h2>Transcripts</h2>",
        *(_transcript(c) for c in report["conversations"]),
    ]
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1300px}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;"
        "vertical-align:top}img{max-width:100%}details{margin:0.3em 0}"
    )
    page = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>doctune conversations</title>'
        f"<style>{style}</style></head><body>{''.join(sections)}</body></html>\n"
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
