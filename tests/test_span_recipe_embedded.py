"""The embedded default on documents it has never seen, with no config file: the span recipe is chosen, every chunk
yields items, and an independent grounding check (written here, not doctune's verifier) passes >= 90% of them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow
UNSEEN = Path(__file__).parent / "data" / "unseen"
_STOP_TEXT = """a an the of to in on for with by at from and or is are was were be it its this that these those do does did
    you your how what why which when who whom many much should can could would will must not no as into up than
    long year fill blank reason"""
_STOP = frozenset(_STOP_TEXT.split())


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9]+(?:[.,][0-9]+)?", text.lower()) if w not in _STOP]


def independent_check(question: str, answer: str, citation: str) -> list[str]:
    """(a) every answer word is in the citation, (b) the answer says something the question does not,
    (c) the question asks about the citation: most of its words are the citation's. Exact words, no stemming."""
    q, a, c = _words(question), _words(answer), set(_words(citation))
    problems = []
    if not a or any(w not in c for w in a):
        problems.append("a: answer not in citation")
    if not set(a) - set(q):
        problems.append("b: answer adds nothing")
    shared = [w for w in q if w in c or w.rstrip("s") in c or w + "s" in c]
    if len(shared) < 2 or len(shared) < 0.6 * len(q):
        problems.append("c: question not about citation")
    return problems


def test_independent_check_catches_the_issues_examples():
    ip44 = "The enclosure is rated IP44, so it must be mounted under a roof."
    assert independent_check("What is the maximum number of valves per controller?", "10", ip44)
    assert independent_check("What's in the box?", "The X200 does not support 5 GHz Wi-Fi", ip44)
    assert independent_check("What is the enclosure rated?", "the enclosure is rated", ip44)  # echo
    assert not independent_check("What is the enclosure rated?", "IP44", ip44)


def _doctune(cwd: Path, *args: str) -> str:
    cli = [sys.executable, "-m", "doctune", "-q", "-w", str(cwd / "ws"), *args]
    done = subprocess.run(cli, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_unseen_documents_without_config_give_grounded_items_for_every_chunk(tmp_path):
    assert not (tmp_path / "doctune.yaml").exists()  # no config file: every setting is the default
    _doctune(tmp_path, "ingest", str(UNSEEN))
    _doctune(tmp_path, "summarize")
    _doctune(tmp_path, "chunk")
    _doctune(tmp_path, "generate", "qa")
    chunks = pd.read_parquet(tmp_path / "ws" / "artifacts" / "chunks.parquet")
    items = pd.read_parquet(tmp_path / "ws" / "artifacts" / "qa.parquet").to_dict("records")
    assert set(chunks.chunk_id) <= {cid for item in items for cid in item["chunk_ids"]}  # >= 1 item per chunk
    failures = []
    for item in items:
        citation = " ".join(c["quote"] for c in item["citations"])
        if problems := independent_check(item["question"], item["answer"], citation):
            failures.append((item["question"], item["answer"], problems))
    assert len(failures) <= 0.1 * len(items), failures
    assert len({i["question"].split()[0] for i in items}) >= 3  # question types vary
    assert len({i["category"] for i in items}) >= 3 and len({i["difficulty"] for i in items}) >= 2
    assert all(i["question_source"] in ("model", "template") for i in items)
    status = _doctune(tmp_path, "status")
    assert "strategy" not in status or "span" in status
    assert "grounded" in status
