"""Re-run every code example's stored check, and print the figures of a code workspace as Markdown.

    python scripts/code_report.py code-work [--python PATH] [--sample 20]

Reads ``examples_code`` and ``code_units``: per kind, the examples kept and how many of their stored checks hold
when re-run in the sandbox now (doctune.code_examples.recheck); the generation counts (calls by origin, mutants
tried and caught); and ``--sample`` rows printed in full to read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from doctune.code_examples.recheck import recheck_example
from doctune.code_examples.tree import RepoTree
from doctune.records import CodeUnit, Example
from doctune.sandbox import SandboxLimits
from doctune.workspace import Workspace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workspace")
    parser.add_argument("--python", default=None, help="The repository's interpreter (default: this one).")
    parser.add_argument("--sample", type=int, default=0, help="Print this many examples in full.")
    args = parser.parse_args(argv)
    ws = Workspace(args.workspace)
    units = {u.unit_id: u for u in ws.read_rows("code_units", CodeUnit)}
    examples = ws.read_rows("examples_code", Example)
    trees = {repo: RepoTree.from_units(units.values(), repo) for repo in {u.repo for u in units.values()}}
    limits = SandboxLimits(timeout_s=20, cpu_s=20)
    kept: Counter[str] = Counter()
    holds: Counter[str] = Counter()
    origins: Counter[str] = Counter()
    failures = []
    for ex in examples:
        fields = ex.field_values()
        kind = fields["kind"]
        kept[kind] += 1
        if kind == "docstring_to_code":
            origins.update(fields["call_origins"])
        unit = units[ex.unit_id]
        question = next(m.content for m in ex.messages if m.role == "user")
        ok, detail = recheck_example(fields, question, ex.target, unit, trees[unit.repo], limits, args.python)
        holds[kind] += ok
        if not ok:
            failures.append(f"{ex.example_id} {kind} {unit.path}:{unit.qualname}: {detail}")
    print("| kind | examples | stored check holds on re-run |")
    print("|---|---|---|")
    for kind in ("docstring_to_code", "explain", "write_test", "fix_bug"):
        print(f"| {kind} | {kept[kind]} | {holds[kind]} |")
    print(f"\nrecorded calls asserted by the tests, by origin: {dict(origins)}")
    for line in failures:
        print("FAILED", line, file=sys.stderr)
    for ex in examples[: args.sample]:
        print("\n---", ex.example_id, ex.split, json.dumps(ex.field_values()["verdict"]))
        for message in ex.messages:
            print(f"[{message.role}]\n{message.content}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
