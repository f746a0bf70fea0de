"""The models page: the registry with its labels and gates, promotion and rollback in a real browser (the same
library calls and refusals as `doctune models promote|rollback`), and a model's lineage and training curve."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from doctune.registry import GateRecord, ModelEntry, Registry
from doctune.serve import create_app
from workbench import chromium_page, live_server

from genutil import build_workspace

HISTORY = [
    {"loss": 2.5, "step": 1, "epoch": 0.5},
    {"loss": 1.8, "step": 2, "epoch": 1.0},
    {"eval_loss": 1.9, "step": 2},
    {"loss": 1.2, "step": 3, "epoch": 1.5},
    {"train_runtime": 3.0, "step": 3},
]


def register(ws, run_id: str, created: str, labels: dict, gate: bool | None, artifacts: dict | None = None) -> None:
    """An entry as training registers it: weights under runs/<id>/train, the log history beside them."""
    folder = ws.root / "runs" / run_id / "train"
    (folder / "adapter").mkdir(parents=True)
    (folder / "log_history.json").write_text(json.dumps(HISTORY), encoding="utf-8")
    registry = Registry(ws)
    registry.register(
        ModelEntry(
            id=run_id,
            project="test",
            created_at=created,
            base_model="tiny-base",
            method="lora",
            weights_path=f"runs/{run_id}/train/adapter",
            dataset_sha256="0" * 64,
            splits={"train": 4, "eval": 2},
            config_hash="h",
            metrics={"initial_loss": 2.5, "final_loss": 1.2, "steps": 3},
            artifacts=artifacts or {},
            labels=labels,
        )
    )
    if gate is not None:
        record = GateRecord(
            passed=gate,
            reason="accuracy on eval: tuned 0.900 vs base 0.500" if gate else "accuracy on eval: below the margin",
            rule={"split": "eval", "metric": "accuracy", "min_margin": 0.0},
            base="tiny-base",
            judge="judge fake",
            report="reports/eval-20250101T000000000000Z.json",
            decided_at="2025-01-01T00:00:00+00:00",
        )
        registry.record_gate(run_id, record, {"eval_accuracy": 0.9 if gate else 0.4})


def workspace(tmp_path):
    cfg, ws = build_workspace(tmp_path / "ws")
    chunks = ws.manifest()["chunks"].sha256
    register(ws, "run-a", "2025-01-01T00:00:00", {"recipe": "character", "character": "HAMLET"}, True,
             {"chunks": chunks, "documents": "f" * 64})  # fmt: skip
    register(ws, "run-b", "2025-01-02T00:00:00", {"recipe": "character", "character": "OPHELIA"}, True)
    register(ws, "run-c", "2025-01-03T00:00:00", {"recipe": "qa"}, False)
    return cfg, ws


def registry_current(ws) -> str | None:
    return json.loads((ws.root / "registry.json").read_text())["current"]


def test_models_table_filters_and_lineage(tmp_path):
    cfg, ws = workspace(tmp_path)
    http = TestClient(create_app(ws, cfg))
    page = http.get("/models").text
    assert all(f'data-id="{i}"' in page for i in ("run-a", "run-b", "run-c"))
    assert "<th>recipe</th>" in page and "<th>character</th>" in page  # the labels present, as columns
    assert ">OPHELIA</option>" in page and "gate failed" in page and "gate passed" in page
    hamlet = http.get("/models?character=hamlet").text
    assert '<tr data-id="run-a"' in hamlet and '<tr data-id="run-b"' not in hamlet
    failed = http.get("/models?gate=failed").text
    assert '<tr data-id="run-c"' in failed and '<tr data-id="run-a"' not in failed

    detail = http.get("/models/run-a").text
    for kind in ("adapter", "dataset", "items", "chunks", "documents"):
        assert f'data-kind="{kind}"' in detail
    assert detail.count('class="fresh">unchanged') == 2 and 'class="stale">changed' in detail  # adapter, chunks
    assert (
        detail.count('class="series"') == 2 and 'data-series="train"' in detail and 'data-series="eval"' in detail
    )  # train and eval loss
    assert "runs/run-a/train/log_history.json" in detail
    assert "accuracy on eval: tuned 0.900" in detail and "/compare?a=" not in detail  # the report is gone
    assert http.get("/models/nope").status_code == 404

    headers = {"X-Doctune-CSRF": http.app.state.ctx.csrf_secret}
    refused = http.post("/api/models/run-c/promote", json={}, headers=headers)
    assert refused.status_code == 409 and "failed its evaluation gate" in refused.json()["detail"]
    assert http.post("/api/models/rollback", headers=headers).status_code == 409
    assert http.post("/api/models/run-a/promote", json={}).status_code == 403  # no CSRF header
    assert http.post("/api/models/run-c/promote", json={"force": True}, headers=headers).json() == {"current": "run-c"}
    assert registry_current(ws) == "run-c"


def test_promote_and_roll_back_in_the_browser(tmp_path):
    cfg, ws = workspace(tmp_path)
    with live_server(create_app(ws, cfg)) as url, chromium_page() as page:
        page.goto(f"{url}/models")
        assert page.text_content("#current-id") == "none"
        page.click("tr[data-id=run-a] button.promote")
        page.wait_for_selector("#current-id:has-text('run-a')")
        assert registry_current(ws) == "run-a"
        assert page.text_content("tr[data-id=run-a] .status") == "current"

        page.click("tr[data-id=run-b] button.promote")
        page.wait_for_selector("#current-id:has-text('run-b')")
        assert page.text_content("tr[data-id=run-a] .status") == "retired"
        assert registry_current(ws) == "run-b"

        # a failed gate is refused with the CLI's message; force is offered because the CLI has --force
        page.click("tr[data-id=run-c] button.promote")
        page.wait_for_selector("#models-message:has-text('failed its evaluation gate')")
        assert "promote with --force to override" in page.text_content("#models-message")
        assert registry_current(ws) == "run-b"
        assert page.locator("tr[data-id=run-c] button.force").count() == 1

        page.click("#rollback")
        page.wait_for_selector("#current-id:has-text('run-a')")
        assert registry_current(ws) == "run-a" and Registry(ws).current().id == "run-a"
        page.click("#rollback")  # nothing before run-a: the registry's refusal is shown
        page.wait_for_selector("#models-message:has-text('nothing to roll back to')")
        assert registry_current(ws) == "run-a"

        page.goto(f"{url}/models/run-a")
        page.wait_for_selector("#loss-curve polyline")
        assert page.locator("tr[data-kind=documents] .unchanged").text_content().strip() == "changed"
