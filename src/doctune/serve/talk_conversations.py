"""The conversation logs (``conversations/<id>/``) on the talk page, and conversations started from it.

* ``GET /talk/conversations``: every logged chat and conversation (characters, turns, when), and the form that
  starts one; ``GET /api/talk/conversations``: the same as JSON.
* ``GET /talk/conversations/{id}``: the transcript, one block per turn with speaker, text and that turn's settings
  (adapter, retrieved sources, boosted words, seed, sampling: what ``turns.jsonl`` records); ``GET
  /api/talk/conversations/{id}/turns?after=N``: the turns after the first N and whether it is still running.
* ``POST /api/talk/conversations``: starts :func:`doctune.stages.converse.run_conversation` (characters and a topic,
  or a scenario file: the packaged ones and ``converse.scenarios_dir``) in a background thread; returns its id at
  once (the log appears when the model is loaded, and grows by one line per finished turn).

An id is a folder name under ``conversations/``; anything else (a path, ``..``) is a 404.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import asdict
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from doctune.converse.log import DIRNAME, TurnRecord, read_conversation
from doctune.serve.app import ServeContext, context
from doctune.serve.talk_engine import TalkState, talk_state

log = logging.getLogger(__name__)

router = APIRouter()

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
MIN_CHARACTERS, MAX_CHARACTERS = 2, 4
POLICIES = ("round_robin", "addressed", "natural")


# -- reading ------------------------------------------------------------------------------------------------------
def _valid_id(ctx: ServeContext, state: TalkState, conversation_id: str) -> str:
    """``conversation_id`` when it names a log folder (or a conversation starting here); else 404."""
    if not ID_RE.match(conversation_id) or ".." in conversation_id:
        raise HTTPException(404, "no such conversation")
    folder = ctx.workspace.root / DIRNAME / conversation_id
    if not (folder / "header.json").is_file() and conversation_id not in state.jobs:
        raise HTTPException(404, "no such conversation")
    return conversation_id


def _read(ctx: ServeContext, state: TalkState, conversation_id: str) -> tuple[dict[str, Any], list[TurnRecord]]:
    """(header, turns) of a conversation; an empty one while a started conversation is still loading its model."""
    folder = ctx.workspace.root / DIRNAME / conversation_id
    if not (folder / "header.json").is_file():
        return {"id": conversation_id, "kind": "conversation", **state.jobs[conversation_id]["header"]}, []
    try:
        rec = read_conversation(ctx.workspace.root, conversation_id)
    except (OSError, ValueError) as exc:
        raise HTTPException(404, f"unreadable conversation: {exc}") from None
    return rec.header, rec.turns


def _state(state: TalkState, conversation_id: str) -> dict[str, Any]:
    job = state.jobs.get(conversation_id)
    if job is None:
        return {"state": "logged", "stop": "", "error": ""}
    return {"state": job["state"], "stop": job.get("stop", ""), "error": job.get("error", "")}


def turn_view(turn: TurnRecord, previous: list[str] | None) -> dict[str, Any]:
    """A turn as the transcript shows it: its record, who came and left before it, its settings as text pairs."""
    row = asdict(turn)
    row["came"] = [c for c in turn.present if previous is not None and c not in previous]
    row["left"] = [c for c in (previous or []) if c not in turn.present]
    meta = [
        ("adapter", turn.adapter or ("(you)" if turn.user else "none: base + card")),
        ("why", turn.why),
        ("seed", turn.seed),
        ("latency", f"{turn.latency_s:.2f} s" if turn.latency_s else ""),
        ("tokens", f"{turn.prompt_tokens} + {turn.completion_tokens}" if turn.completion_tokens else ""),
        ("prompt", turn.prompt_sha256[:12]),
        *((k, v) for k, v in sorted(turn.settings.items())),
    ]
    row["meta"] = [(k, str(v)) for k, v in meta if v not in ("", None)]
    return row


def turn_views(turns: list[TurnRecord], before: list[str] | None = None) -> list[dict[str, Any]]:
    out, previous = [], before
    for turn in turns:
        out.append(turn_view(turn, previous))
        previous = turn.present
    return out


@router.get("/talk/conversations", response_class=HTMLResponse)
def conversations_page(request: Request) -> HTMLResponse:
    from doctune.serve.talk import characters
    from doctune.stages.converse import list_conversations

    ctx = context(request)
    state = talk_state(request)
    rows = [r | _state(state, r["id"]) for r in reversed(list_conversations(ctx.workspace))]
    return ctx.render(
        request,
        "talk_conversations.html",
        page="talk",
        conversations=rows,
        characters=characters(ctx),
        scenarios=sorted(scenario_paths(ctx)),
        converse=ctx.config.converse,
        policies=POLICIES,
    )


@router.get("/api/talk/conversations")
def conversations_json(request: Request) -> list[dict[str, Any]]:
    from doctune.stages.converse import list_conversations

    state = talk_state(request)
    return [r | _state(state, r["id"]) for r in list_conversations(context(request).workspace)]


@router.get("/talk/conversations/{conversation_id}", response_class=HTMLResponse)
def transcript_page(request: Request, conversation_id: str) -> HTMLResponse:
    ctx = context(request)
    state = talk_state(request)
    cid = _valid_id(ctx, state, conversation_id)
    header, turns = _read(ctx, state, cid)
    return ctx.render(
        request,
        "talk_transcript.html",
        page="talk",
        cid=cid,
        header=header,
        scenario=header.get("scenario") or {},
        settings=sorted((header.get("settings") or {}).items()),
        turns=turn_views(turns),
        status=_state(state, cid),
    )


@router.get("/api/talk/conversations/{conversation_id}/turns")
def conversation_turns(request: Request, conversation_id: str, after: int = Query(0, ge=0)) -> dict[str, Any]:
    """The turns after the first ``after`` (each with its settings), and the conversation's state."""
    ctx = context(request)
    state = talk_state(request)
    cid = _valid_id(ctx, state, conversation_id)
    _header, turns = _read(ctx, state, cid)
    before = turns[after - 1].present if 0 < after <= len(turns) else None
    return {"id": cid, "total": len(turns), "turns": turn_views(turns[after:], before), **_state(state, cid)}


# -- starting ------------------------------------------------------------------------------------------------------
def scenario_paths(ctx: ServeContext) -> dict[str, Path]:
    """Scenario name -> YAML file: the packaged scenarios, and those of ``converse.scenarios_dir`` (which win)."""
    found: dict[str, Path] = {}
    packaged = files("doctune.data").joinpath("scenarios")
    for item in packaged.iterdir():
        if item.name.endswith(".yaml"):
            with as_file(item) as path:  # the package is a folder: the path stays valid
                found[item.name.removesuffix(".yaml")] = Path(path)
    folder = ctx.config.converse.scenarios_dir
    if folder and Path(folder).is_dir():
        for path in Path(folder).glob("*.yaml"):
            found[path.stem] = path
    return found


class StartRequest(BaseModel):
    characters: list[str] = Field(default_factory=list, max_length=MAX_CHARACTERS)
    scenario: str | None = Field(None, max_length=200)
    topic: str = Field("", max_length=1000)
    turns: int | None = Field(None, ge=1, le=100)
    seed: int | None = None
    policy: Literal["round_robin", "addressed", "natural"] | None = None
    rag: bool | None = None
    bias: bool | None = None
    base: bool = Field(False, description="Every character on the base model (no adapters), as `converse --base`.")


def _names(ctx: ServeContext, body: StartRequest) -> tuple[list[str], Path | None]:
    """The characters (canonical) and the scenario file of a start request; 4xx naming what is wrong."""
    from doctune.config import ConfigError
    from doctune.converse.scenario import ScenarioError, load_scenario
    from doctune.converse.session import resolve_character
    from doctune.records import Speech

    names = [c.strip() for c in body.characters if c.strip()]
    path = None
    if body.scenario:
        if names:
            raise HTTPException(422, "give characters or a scenario, not both (the scenario lists its characters)")
        path = scenario_paths(ctx).get(body.scenario)
        if path is None:
            raise HTTPException(404, f"no scenario {body.scenario!r}")
        try:
            names = load_scenario(path).characters
        except ScenarioError as exc:
            raise HTTPException(422, str(exc)) from None
    elif not MIN_CHARACTERS <= len(names) <= MAX_CHARACTERS:
        raise HTTPException(422, f"choose {MIN_CHARACTERS} to {MAX_CHARACTERS} characters, or a scenario")
    try:
        speeches = ctx.cached(
            "talk-speeches",
            ctx.artifact_sha("speeches"),
            lambda: ctx.workspace.read_rows("speeches", Speech, ctx.config),
        )
        canonical = [resolve_character(n, speeches) for n in names]
    except ConfigError as exc:
        raise HTTPException(404, str(exc)) from None
    except Exception as exc:  # no (or a stale) speeches artifact
        raise HTTPException(409, str(exc)) from None
    if len(set(canonical)) != len(canonical):
        raise HTTPException(422, "a character is chosen twice")
    return canonical, path


@router.post("/api/talk/conversations")
def start_conversation(request: Request, body: StartRequest) -> dict[str, Any]:
    """Start a conversation in a background thread; its id (the transcript page follows it)."""
    from doctune.converse.log import new_id
    from doctune.stages.converse import run_conversation

    ctx = context(request)
    state = talk_state(request)
    names, path = _names(ctx, body)
    cid = new_id("conversation", names)
    title = f"scenario {body.scenario}" if path else " and ".join(n.title() for n in names)
    job: dict[str, Any] = {"state": "running", "header": {"characters": names, "scenario": {"title": title}}}
    with state.guard:
        state.jobs[cid] = job

    def run() -> None:
        try:
            result = run_conversation(
                ctx.config,
                ctx.workspace,
                [] if path else names,
                scenario_path=path,
                topic=body.topic,
                turns=body.turns,
                seed=body.seed,
                policy=body.policy,
                rag=body.rag,
                bias=body.bias,
                use_adapters=not body.base,
                write=None,
                conversation_id=cid,
            )
            job["stop"] = result.stats.get("stop", "")
            job["state"] = "finished"
        except Exception as exc:  # shown on the transcript page
            log.exception("conversation %s failed", cid)
            job["error"] = str(exc) or type(exc).__name__
            job["state"] = "failed"

    threading.Thread(target=run, name=f"doctune-converse-{cid}", daemon=True).start()
    return {"id": cid, "url": f"/talk/conversations/{cid}", "state": "running"}
