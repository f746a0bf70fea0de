"""An OpenAI-compatible endpoint that answers every call after a fixed latency, in its own process.

For scale tests and benchmarks: with N calls, latency L and concurrency C no client beats N*L/C. Replies are
grounded QA items made from the prompt's passage (the first sentence is quoted and restated), so `generate qa`
keeps them; any other prompt gets a short reply derived from its last message. Every request body is appended,
one JSON line each, to ``log_path`` when given (tests count calls across runs and processes with it).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import re
import threading
from pathlib import Path
from typing import Any

from doctune.testing.openai_server import ScriptedOpenAIServer, ScriptedReply


def qa_reply_for(payload: dict[str, Any]) -> str:
    """Two grounded items for a QA generation prompt (its passage between triple quotes); else a short reply."""
    user = next((m["content"] for m in reversed(payload.get("messages", [])) if m.get("role") == "user"), "")
    passages = re.findall(r'"""\n(.*?)\n"""', user, flags=re.DOTALL)
    if not passages:
        return "Reply " + hashlib.sha256(user.encode()).hexdigest()[:8] + ": " + " ".join(user.split()[:8])
    sentence = passages[0].split(". ")[0].rstrip(".") + "."
    words = sentence.rstrip(".").split()
    item = {  # grounded: the question names the first half of the sentence, the answer states the rest
        "question": f"What does the record say about {' '.join(words[:4])}?",
        "answer": " ".join(words[4:]) or sentence,
        "evaluation_criteria": "Must restate the fact.",
        "difficulty": 2,
        "category": "factual",
        "citations": [sentence],
    }
    return json.dumps({"items": [item, dict(item, question=item["question"].replace("What", "Which fact"))]})


def _serve(latency: float, log_path: str | None, queue: Any) -> None:
    lock = threading.Lock()

    def respond(payload: dict[str, Any]) -> ScriptedReply:
        if log_path:
            with lock, open(log_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(payload, sort_keys=True) + "\n")
        return ScriptedReply(content=qa_reply_for(payload), delay_s=latency)

    with ScriptedOpenAIServer(respond) as server:
        queue.put(server.base_url)
        threading.Event().wait()


class FixedLatencyEndpoint:
    """``with FixedLatencyEndpoint(0.05, log_path) as ep: ... ep.base_url ...`` (a separate process: the server
    must not share the client's GIL, as a real one would not)."""

    def __init__(self, latency_s: float = 0.05, log_path: str | Path | None = None):
        self.latency_s, self.log_path = latency_s, (str(log_path) if log_path else None)
        self.base_url = ""
        self._process: multiprocessing.Process | None = None

    def __enter__(self) -> FixedLatencyEndpoint:
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        self._process = ctx.Process(target=_serve, args=(self.latency_s, self.log_path, queue), daemon=True)
        self._process.start()
        self.base_url = queue.get(timeout=60)
        return self

    def requests(self) -> list[dict[str, Any]]:
        """Every request received so far (needs ``log_path``)."""
        if not self.log_path or not Path(self.log_path).exists():
            return []
        return [json.loads(line) for line in Path(self.log_path).read_text(encoding="utf-8").splitlines() if line]

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.join(timeout=10)
