"""Talk: chat with the base model, a registered model or a character of the ingested plays; the conversation logs.

* ``GET /talk``: choose what to talk to (``base``, the current or any registered model, a character with its newest
  adapter, a chosen one or the base) and the switches the CLI has (retrieval, logit bias for characters; longest
  reply for models), then chat: ``POST /api/talk/chat`` streams the reply as newline-delimited JSON
  (:mod:`doctune.serve.talk_engine`). Character chats are logged under ``conversations/`` like
  ``doctune chat --character`` logs them; a plain model chat is not logged (the CLI does not log it either).
* ``GET /api/talk/options``: the targets and characters as JSON.
* The conversation logs, their transcripts and starting a conversation: :mod:`doctune.serve.talk_conversations`.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pyarrow.parquet as pq
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel, Field

from doctune.serve.app import ServeContext, context
from doctune.serve.talk_conversations import router as conversations_router
from doctune.serve.talk_engine import character_chat_job, model_chat_job, stream_events, talk_state

log = logging.getLogger(__name__)

router = APIRouter()
router.include_router(conversations_router)

BASE = "base"
MAX_HISTORY = 40


def characters(ctx: ServeContext) -> list[dict[str, Any]]:
    """Every character the plays have (what ``chat --character`` accepts), with its speeches and adapters."""
    from doctune.registry import Registry

    adapters: dict[str, list[str]] = {}
    for entry in Registry(ctx.workspace).list_entries():
        name = entry.labels.get("character", "").upper()
        if name:
            adapters.setdefault(name, []).append(entry.id)
    path = ctx.workspace.artifact_path("speeches")
    counts: Counter[tuple[str, str]] = Counter()
    if path.exists():

        def build() -> Counter[tuple[str, str]]:
            table = pq.read_table(path, columns=["speaker", "play"])
            pairs = zip(table.column("speaker").to_pylist(), table.column("play").to_pylist(), strict=True)
            return Counter((s, p) for s, p in pairs if s and "/" not in s)

        counts = ctx.cached("talk-speakers", ctx.artifact_sha("speeches"), build)
    rows = [
        {"name": name, "play": play, "speeches": n, "adapters": adapters.get(name, [])}
        for (name, play), n in counts.items()
    ]
    return sorted(rows, key=lambda r: (not r["adapters"], r["play"], -r["speeches"], r["name"]))


def targets(ctx: ServeContext) -> list[dict[str, Any]]:
    """``base`` and every registered model (newest first), the current one marked."""
    from doctune.registry import Registry
    from doctune.train.resolve import student_base

    rows = [{"id": BASE, "label": f"base: {student_base(ctx.config)} (untuned)", "current": False, "labels": {}}]
    for entry in reversed(Registry(ctx.workspace).list_entries()):
        labels = ", ".join(f"{k}={v}" for k, v in sorted(entry.labels.items()))
        rows.append(
            {
                "id": entry.id,
                "label": f"{entry.id} ({entry.base_model}{'; ' + labels if labels else ''}; {entry.status})",
                "current": entry.status == "current",
                "labels": dict(entry.labels),
            }
        )
    return rows


@router.get("/talk", response_class=HTMLResponse)
def talk_page(request: Request) -> HTMLResponse:
    ctx = context(request)
    cfg = ctx.config.converse
    return ctx.render(
        request,
        "talk.html",
        page="talk",
        targets=targets(ctx),
        characters=characters(ctx),
        converse=cfg,
    )


@router.get("/api/talk/options")
def talk_options(request: Request) -> dict[str, Any]:
    ctx = context(request)
    return {"targets": targets(ctx), "characters": characters(ctx)}


class Message(BaseModel):
    role: str = Field(pattern="^(user|assistant)$")
    content: str = Field(max_length=20_000)


class ChatSettings(BaseModel):
    rag: bool | None = None
    bias: bool | None = None
    max_tokens: int = Field(256, ge=1, le=2048)


class ChatRequest(BaseModel):
    target: str = Field("", max_length=200, description="base, a registry id (or prefix), or empty: the current "
                        "model (with a character: its newest adapter)")  # fmt: skip
    character: str | None = Field(None, max_length=200)
    chat: str | None = Field(None, max_length=200, description="The character chat to go on with (its log id).")
    messages: list[Message] = Field(default_factory=list, description="A plain chat's history.")
    message: str = Field(min_length=1, max_length=20_000)
    settings: ChatSettings = Field(default_factory=ChatSettings)


def _resolve_target(ctx: ServeContext, target: str, with_character: bool) -> str:
    """The registry id (or ``base``, or "" for a character's newest adapter) that ``target`` names; 404 if none."""
    from doctune.registry import Registry, RegistryError

    target = target.strip()
    if target == BASE or (not target and with_character):
        return target
    registry = Registry(ctx.workspace)
    try:
        entry = registry.get(target) if target else registry.current()
    except RegistryError as exc:
        raise HTTPException(404, str(exc)) from None
    if entry is None:
        raise HTTPException(404, "no current model: choose base or a registered model")
    return entry.id


@router.post("/api/talk/chat")
def talk_chat(request: Request, body: ChatRequest) -> StreamingResponse:
    """The reply to ``body.message``, streamed as NDJSON events (see :func:`talk_engine.stream_events`)."""
    ctx = context(request)
    state = talk_state(request)
    message = body.message.strip()
    if not message:
        raise HTTPException(422, "an empty message")
    if body.character:
        from doctune.config import ConfigError
        from doctune.converse.session import resolve_character
        from doctune.records import Speech

        target = _resolve_target(ctx, body.target, with_character=True)
        try:
            speeches = ctx.cached(
                "talk-speeches",
                ctx.artifact_sha("speeches"),
                lambda: ctx.workspace.read_rows("speeches", Speech, ctx.config),
            )
            character = resolve_character(body.character, speeches)
        except ConfigError as exc:  # an unknown character: the message lists the known ones
            raise HTTPException(404, str(exc)) from None
        except Exception as exc:  # no (or a stale) speeches artifact
            raise HTTPException(409, str(exc)) from None
        job = character_chat_job(
            ctx, state, target, character, body.chat, message, body.settings.rag, body.settings.bias
        )
    else:
        target = _resolve_target(ctx, body.target, with_character=False)
        history = [m.model_dump() for m in body.messages][-MAX_HISTORY:]
        job = model_chat_job(ctx, state, target, history, message, body.settings.max_tokens)
    return StreamingResponse(
        stream_events(job), media_type="application/x-ndjson", headers={"Cache-Control": "no-store"}
    )
