"""The talk page's model side: loaded models kept per target, chats kept per id, replies streamed from a worker.

Loading a model costs seconds, so :class:`TalkState` (one per app, on ``app.state.talk``) keeps one loaded model per
target: ``("model", ID|base)`` -> ``(model, tokenizer)`` for a plain chat (:func:`doctune.train.chat.load_chat_model`,
what ``doctune chat [ID|base]`` loads), ``("character", ""|base|ID)`` -> a
:class:`~doctune.converse.session.CharacterSession` (what ``doctune chat --character NAME [ID|base]`` opens). Each
target has its own lock: one generation at a time per loaded model (adapters are switched on the shared base).

:func:`stream_events` runs a job in a worker thread and yields what it reports as newline-delimited JSON
(``{"status": ...}``, ``{"piece": ...}``, then ``{"done": {...}}`` or ``{"error": ...}``), so the HTTP response
streams while the model generates.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from doctune.serve.app import ServeContext, context

log = logging.getLogger(__name__)

#: character chats kept open (their logs too); the oldest is closed beyond this
MAX_CHATS = 32

Emit = Callable[[dict[str, Any]], None]


@dataclass
class ChatEntry:
    """A character chat in progress: its target key, character and the library's chat object (log, what it heard)."""

    key: tuple[str, str]
    character: str
    chat: Any


@dataclass
class TalkState:
    loaded: dict[tuple[str, str], Any] = field(default_factory=dict)
    locks: dict[tuple[str, str], threading.Lock] = field(default_factory=dict)
    chats: OrderedDict[str, ChatEntry] = field(default_factory=OrderedDict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def lock_for(self, key: tuple[str, str]) -> threading.Lock:
        with self.guard:
            return self.locks.setdefault(key, threading.Lock())

    def remember_chat(self, chat_id: str, entry: ChatEntry) -> None:
        with self.guard:
            self.chats[chat_id] = entry
            self.chats.move_to_end(chat_id)
            while len(self.chats) > MAX_CHATS:
                _old_id, old = self.chats.popitem(last=False)
                try:
                    old.chat.close()
                except OSError as exc:
                    log.warning("closing chat log %s: %s", _old_id, exc)


def talk_state(request: Request) -> TalkState:
    ctx = context(request)
    with ctx.lock:
        state = getattr(request.app.state, "talk", None)
        if state is None:
            state = TalkState()
            request.app.state.talk = state
        return state


def stream_events(job: Callable[[Emit], dict[str, Any]]) -> Iterator[str]:
    """Run ``job(emit)`` in a worker thread; yield each event it emits, then its result, as NDJSON lines."""
    events: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def work() -> None:
        try:
            events.put({"done": job(events.put)})
        except Exception as exc:  # reported to the page; the server goes on
            log.exception("talk: the reply failed")
            events.put({"error": str(exc) or type(exc).__name__})
        finally:
            events.put(None)

    threading.Thread(target=work, name="doctune-talk", daemon=True).start()
    while (event := events.get()) is not None:
        yield json.dumps(event, ensure_ascii=False) + "\n"


# -- plain chats with a registered model or the base ------------------------------------------------------------
def system_prompt(ctx: ServeContext) -> str | None:
    """The chat's system prompt, as ``doctune chat`` takes it: ``train.system_prompt`` else ``export.system_prompt``."""
    cfg = ctx.config
    prompt = cfg.train.system_prompt if cfg.train.system_prompt is not None else cfg.export.system_prompt
    return prompt or None


def model_chat_job(
    ctx: ServeContext, state: TalkState, model_id: str, history: list[dict[str, str]], message: str, max_tokens: int
) -> Callable[[Emit], dict[str, Any]]:
    """The job streaming ``model_id``'s reply (``base`` or a registry id) to ``history`` + ``message``."""
    from doctune.train.chat import generate_streamed, load_chat_model
    from doctune.train.resolve import resolve_model

    key = ("model", model_id)

    def job(emit: Emit) -> dict[str, Any]:
        with state.lock_for(key):
            if key not in state.loaded:
                emit({"status": f"loading {model_id}"})
                _entry, weights, base = resolve_model(ctx.workspace, model_id, ctx.config)
                state.loaded[key] = load_chat_model(weights, base)
            model, tokenizer = state.loaded[key]
            prompt = system_prompt(ctx)
            messages = [*([{"role": "system", "content": prompt}] if prompt else []), *history]
            messages.append({"role": "user", "content": message})
            reply = generate_streamed(
                model, tokenizer, messages, lambda piece: emit({"piece": piece}), max_new_tokens=max_tokens
            )
        return {"reply": reply, "model": model_id, "log": None}

    return job


# -- character chats ------------------------------------------------------------------------------------------
def character_chat_job(
    ctx: ServeContext,
    state: TalkState,
    target: str,
    character: str,
    chat_id: str | None,
    message: str,
    rag: bool | None,
    bias: bool | None,
) -> Callable[[Emit], dict[str, Any]]:
    """The job streaming ``character``'s reply; ``target``: "" (its newest adapter), ``base`` or a registry id, as
    ``doctune chat --character NAME [ID|base]`` takes them. The chat goes on in ``chat_id`` when it is the same
    target and character, else a new chat (and log) starts."""
    from doctune.converse.chat import CharacterChat
    from doctune.converse.session import open_session
    from doctune.registry import Registry

    key = ("character", target)
    ws = ctx.workspace

    def job(emit: Emit) -> dict[str, Any]:
        with state.lock_for(key):
            session = state.loaded.get(key)
            entry = Registry(ws).get(target) if target not in ("", "base") else None
            if session is None:
                emit({"status": f"loading the model for {character}"})
                session = open_session(
                    ctx.config,
                    ws,
                    [character],
                    base_model=entry.base_model if entry else None,
                    use_adapters=target != "base",
                )
                state.loaded[key] = session
            current = state.chats.get(chat_id or "")
            canonical = session.add_character(character, ws)
            if current is None or current.key != key or current.character != canonical:
                chat = CharacterChat(session, canonical, ws.root, lambda _text: None, ws)
                if entry is not None:  # the chosen adapter speaks for this character (as the CLI does)
                    session.voices.add(chat.character, entry.id, ws.root / entry.weights_path)
                current = ChatEntry(key=key, character=canonical, chat=chat)
                state.remember_chat(chat.log.id, current)
            chat = current.chat
            if rag is not None:
                session.rag = rag
            if bias is not None:
                session.bias = bias
            prefix = f"{chat.character}: "
            started = [False]

            def write(text: str) -> None:
                if not started[0]:
                    started[0] = True
                    if text == prefix:  # the terminal's "NAME: " before the reply
                        return
                emit({"piece": text})

            chat.write = write
            reply = chat.say(message)
            last = chat.log.turns[-1] if chat.log.turns else None
        return {
            "reply": reply,
            "chat": chat.log.id,
            "log": chat.log.id,
            "character": chat.character,
            "adapter": last.adapter if last else None,
            "sources": list(last.sources) if last else [],
            "boosted_used": list(last.boosted_used) if last else [],
            "settings": {"rag": session.rag, "bias": session.bias},
        }

    return job
