"""Generation against a local OpenAI-compatible server that injects faults (loopback only)."""

from __future__ import annotations

import threading

from doctune.llm import Message
from doctune.records import Chunk, QAItem, UnitOutcome
from doctune.stages import generate
from doctune.testing.openai_server import ScriptedOpenAIServer, ScriptedReply

from genutil import build_workspace, passages, qa_reply

FAULTS = ["rate_limited", "server_error", "timeout", "malformed_body", "malformed_content", "ok"]


class FaultPlan:
    """The first request about each chunk gets that chunk's fault; every later request succeeds."""

    def __init__(self, chunks: list[Chunk], always_failing: set[str] = frozenset()):
        self.fault_of = {c.text[:40]: FAULTS[i % len(FAULTS)] for i, c in enumerate(chunks)}
        self.always_failing = always_failing
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, payload: dict) -> ScriptedReply:
        messages = [Message(**m) for m in payload["messages"]]
        key = passages(messages[1].content)[0][:40]
        with self.lock:
            n = self.seen[key] = self.seen.get(key, 0) + 1
        fault = "server_error" if key in self.always_failing else self.fault_of[key] if n == 1 else "ok"
        if fault == "rate_limited":
            return ScriptedReply(status=429, headers={"Retry-After": "0.05"})
        if fault == "server_error":
            return ScriptedReply(status=500)
        if fault == "timeout":
            return ScriptedReply(content=qa_reply(messages), delay_s=1.5)
        if fault == "malformed_body":
            return ScriptedReply(raw_body=b'{"id": "x", "choices": [{"message": ')
        if fault == "malformed_content":
            return ScriptedReply(content='{"items": [{"question": "unterminated')
        return ScriptedReply(content=qa_reply(messages))


def configure(tmp_path, base_url: str):
    return build_workspace(
        tmp_path,
        {
            "chunk.min_chars": 60,
            "chunk.max_chars": 140,
            "models.generator": {
                "backend": "openai",
                "model": "scripted",
                "base_url": base_url,
                "api_key_env": "DOCTUNE_TEST_KEY",
                "timeout_s": 0.5,
                "max_retries": 3,
                "retry_backoff_s": 0.05,
                "max_concurrency": 4,
                "requests_per_minute": 6000,
            },
        },
    )


def test_every_fault_recovers_and_nothing_is_lost_or_duplicated(tmp_path):
    plan_holder = {}
    with ScriptedOpenAIServer(lambda p: plan_holder["plan"](p)) as server:
        cfg, ws = configure(tmp_path, server.base_url)
        chunks = ws.read_rows("chunks", Chunk, cfg)
        assert len(chunks) >= len(FAULTS)
        plan_holder["plan"] = FaultPlan(chunks)
        result = generate.run_qa(cfg, ws, progress=False)
        outcomes = ws.read_rows("qa_outcomes", UnitOutcome, cfg)
        items = ws.read_rows("qa", QAItem, cfg)
        assert sorted(o.unit_id for o in outcomes) == sorted(c.chunk_id for c in chunks)
        assert {o.status for o in outcomes} == {"items"}, [o for o in outcomes if o.status != "items"]
        assert len(items) == len({i.item_id for i in items}) == len(chunks)
        n_faults = sum(1 for c in chunks if plan_holder["plan"].fault_of[c.text[:40]] != "ok")
        assert len(server.requests) == len(chunks) + n_faults  # each fault cost exactly one extra request
        assert result.stats["llm"]["calls"] == len(chunks) + sum(
            1 for c in chunks if plan_holder["plan"].fault_of[c.text[:40]] == "malformed_content"
        )
        # the rerun is served from the cache: the server sees nothing new
        before = len(server.requests)
        again = generate.run_qa(cfg, ws, progress=False)
        assert len(server.requests) == before and again.stats["llm"]["calls"] == 0
        assert ws.read_rows("qa", QAItem, cfg) == items


def test_a_chunk_that_always_fails_is_recorded_and_the_rest_go_on(tmp_path):
    plan_holder = {}
    with ScriptedOpenAIServer(lambda p: plan_holder["plan"](p)) as server:
        cfg, ws = configure(tmp_path, server.base_url)
        chunks = ws.read_rows("chunks", Chunk, cfg)
        doomed = chunks[2]
        plan = FaultPlan(chunks, always_failing={doomed.text[:40]})
        plan.fault_of = dict.fromkeys(plan.fault_of, "ok")
        plan_holder["plan"] = plan
        result = generate.run_qa(cfg, ws, progress=False)
        outcomes = {o.unit_id: o for o in ws.read_rows("qa_outcomes", UnitOutcome, cfg)}
        assert outcomes[doomed.chunk_id].status == "backend_error"
        assert "HTTP 500" in outcomes[doomed.chunk_id].detail
        assert plan.seen[doomed.text[:40]] == 4  # first try + max_retries
        assert result.counts["items"] == len(chunks) - 1
        assert all(o.status == "items" for cid, o in outcomes.items() if cid != doomed.chunk_id)
