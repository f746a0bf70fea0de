"""Data shipped with doctune: ``grounding_pairs.jsonl``, hand-labelled item/citation pairs from the example documents
(grounded ones and hard negatives), on which the grounding verifiers are measured and the LLM verifier is checked."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files


@cache
def grounding_pairs() -> tuple[dict, ...]:
    """The labelled pairs: question, answer, citations, criteria, label (grounded or not), kind, id, source."""
    text = files("doctune.data").joinpath("grounding_pairs.jsonl").read_text(encoding="utf-8")
    return tuple(json.loads(line) for line in text.splitlines() if line.strip())
