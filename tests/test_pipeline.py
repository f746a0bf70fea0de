"""`doctune run`: every stage in order, skipped when current, resumed after an interruption."""

from __future__ import annotations

import json
import os

import pytest

from doctune.config import DoctuneConfig
from doctune.llm.fake import FakeBackend
from doctune.stages import pipeline
from doctune.workspace import Workspace

from genutil import RIVERS, SOLAR, qa_reply

FakeBackend.register_script("pipeline-script", qa_reply)
REPHRASE = json.dumps({"question": "Put another way?", "answer": "Same."})
VERDICT = json.dumps({"reason": "Fine.", "verdict": "correct"})


def configure(tmp_path) -> tuple[DoctuneConfig, Workspace]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "solar.md").write_text(SOLAR)
    (docs / "rivers.md").write_text(RIVERS)
    cfg = DoctuneConfig.model_validate(
        {
            "workspace": str(tmp_path / "ws"),
            "ingest": {"paths": [str(docs)]},
            "chunk": {"min_chars": 60, "max_chars": 160},
            "models": {
                "generator": {"backend": "fake", "model": "pipeline-script", "options": {"default_reply": "About it."}},
                "rephraser": {"backend": "fake", "options": {"default_reply": REPHRASE}},
                "embedder": {"backend": "fake"},
                "judge": {"backend": "fake", "options": {"default_reply": VERDICT}},
            },
            "curate": {"label_clusters": False, "eval_share": 0.3, "mirror_size": 2},
            "train": {"max_steps": 1, "max_length": 64, "per_device_batch_size": 4, "save_steps": 1},
            "evaluate": {"splits": ["eval"], "max_tokens": 8, "n_resamples": 200},
        }
    )
    return cfg, Workspace(cfg.workspace)


@pytest.mark.slow
def test_run_everything_then_skip_then_rerun_what_changed(tmp_path):
    cfg, ws = configure(tmp_path)
    first = pipeline.run_pipeline(cfg, ws, progress=False)
    assert first.skipped == []
    assert first.ran[0] == "ingest" and first.ran[-2:] == ["train", "eval"]
    assert first.totals["splits"]["train"] > 0 and "training" in first.totals

    second = pipeline.run_pipeline(cfg, ws, progress=False)
    assert second.ran == ["curate report", "curate map", "eval"]  # cheap views and cached verdicts

    # a source file changes: ingest and everything downstream run again, training included
    solar = tmp_path / "docs" / "solar.md"
    solar.write_text(SOLAR + "\nPluto is a dwarf planet in the Kuiper belt, far beyond Neptune.\n")
    os.utime(solar, ns=(solar.stat().st_atime_ns, solar.stat().st_mtime_ns + 10**9))
    third = pipeline.run_pipeline(cfg, ws, progress=False)
    assert third.ran[:4] == ["ingest", "summarize", "chunk", "generate qa"] and "train" in third.ran
