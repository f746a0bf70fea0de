"""Human review from the command line: ``doctune review`` records a decision, ``doctune curate reviews`` reports
how reviewers agree with each other and with the automatic verifier."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from doctune.cli.common import EXPECTED_ERRORS, ConfigOpt, SetOpt, WorkspaceOpt, app, console, fail, load_context
from doctune.cli.curate import curate_app


@app.command(
    epilog="Examples:  doctune review 3f2a91c0d4e5b6a7 reject --reason 'answer not in the quote'  |  "
    "doctune review 3f2a91c0d4e5b6a7 edit --answer 'Up to 8 valves.'  |  "
    "doctune review character-0a1b2c3d4e5f6a7b edit --target 'Good morrow, my lord.'"
)
def review(
    item_id: Annotated[
        str,
        typer.Argument(
            help="The item to review: a QA item_id (dataset, qa, multihop, rephrased) or a recipe's example_id.",
            show_default=False,
        ),
    ],
    decision: Annotated[
        str,
        typer.Argument(
            help="approve (keep it, even if the verifier rejects it), reject (drop it) or edit (replace fields).",
            show_default=False,
        ),
    ],
    reason: Annotated[str, typer.Option(help="Why; recommended for reject (shown in `doctune status`).")] = "",
    reviewer: Annotated[
        str | None, typer.Option(help="Your name in the reviews artifact (default: $USER, else 'reviewer').")
    ] = None,
    question: Annotated[str | None, typer.Option(help="edit, QA item: the new question.")] = None,
    answer: Annotated[str | None, typer.Option(help="edit, QA item: the new answer.")] = None,
    criteria: Annotated[str | None, typer.Option(help="edit, QA item: the new evaluation criteria.")] = None,
    prompt: Annotated[str | None, typer.Option(help="edit, example: the new last user message.")] = None,
    target: Annotated[str | None, typer.Option(help="edit, example: the new assistant reply (the target).")] = None,
    fields: Annotated[str | None, typer.Option(help="edit, example: the recipe's fields as a JSON object.")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Record a human decision on one item in the `reviews` artifact.

    \b
    The latest decision per item wins at curation, whoever made it: a rejected
    item is dropped, an edited one replaced, an approved one kept even when the
    grounding verifier or the recipe's checks reject it. Each review records
    the verifier's verdict, so overrides are counted (`doctune curate reviews`).
    The datasets become stale: rerun `doctune curate split` (QA items) or
    `doctune curate examples RECIPE`, then `doctune export`.
    """
    from doctune.curate.reviews import ReviewError, record_review

    edits = {
        "question": question,
        "answer": answer,
        "evaluation_criteria": criteria,
        "prompt": prompt,
        "target": target,
        "fields": fields,
    }
    who = reviewer or os.environ.get("USER") or "reviewer"
    try:
        cfg, ws = load_context(config, set_, workspace)
        done = record_review(ws, cfg, item_id, decision, who, reason=reason, edits=edits)
    except (ReviewError, *EXPECTED_ERRORS) as exc:
        raise fail(str(exc)) from None
    console.print(
        f"[bold green]review {done.review_id}[/]: {done.decision} {escape(done.item_id)} by {escape(done.reviewer)}"
    )
    overrides = " (the decision overrides it)" if done.override else ""
    console.print(f"  verifier on the original: {escape(done.verifier)}{overrides}")
    if done.recheck:
        verdict = json.loads(done.recheck)
        label = "accepts" if done.recheck_accepts else "rejects"
        why = ", ".join(verdict.get("reasons") or verdict.get("failed") or [])
        console.print(f"  verifier on the edit: {label}" + (f" ({escape(why)})" if why else ""))
    step = "curate split" if done.recipe == "qa" else f"curate examples {done.recipe}"
    console.print(f"  next: `doctune {step}` applies it")


@curate_app.command("reviews")
def curate_reviews(config: ConfigOpt = None, set_: SetOpt = None, workspace: WorkspaceOpt = None) -> None:
    """How reviewers agree: with each other and with the automatic verifier (reports/reviews.json).

    \b
    Accept (approve or edit) vs reject, on each reviewer's latest decision per
    item: observed agreement and Cohen's kappa (1 = perfect, 0 = what chance
    gives, below 0 = worse than chance; "-" with fewer than 2 shared items).
    """
    from doctune.curate.reviews import agreement_report, read_reviews, write_agreement_report

    try:
        _, ws = load_context(config, set_, workspace)
    except EXPECTED_ERRORS as exc:
        raise fail(str(exc)) from None
    reviews = read_reviews(ws)
    report = agreement_report(reviews)
    path = write_agreement_report(ws, report)
    if not reviews:
        console.print("no reviews yet: `doctune review ITEM_ID approve|reject|edit` records one")
    else:
        decided = ", ".join(f"{n} {d}" for d, n in report["effective_decisions"].items())
        console.print(
            f"[bold green]reviews[/]: {report['reviews']} decisions on {report['items']} items by "
            f"{len(report['reviewers'])} reviewers; latest per item: {decided}; "
            f"{report['overrides']} override the verifier"
        )
        table = Table(title="agreement (accept vs reject)")
        for col in ("between", "items", "observed", "kappa"):
            table.add_column(col)
        rows = [(" vs ".join(p["reviewers"]), p) for p in report["pairs"]]
        rows += [(f"{v['reviewer']} vs verifier", v) for v in report["verifier"]]
        for name, row in rows:
            observed = "-" if row["observed"] is None else f"{row['observed']:.2f}"
            kappa = "-" if row["kappa"] is None else f"{row['kappa']:.2f}"
            table.add_row(escape(name), str(row["n"]), observed, kappa)
        console.print(table)
    console.print(f"  report -> {path}")
