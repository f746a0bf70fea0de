"""chat --character, converse, conversations: talking to the characters of the ingested plays.

* :func:`run_character_chat`: the terminal chat with one character (:mod:`doctune.converse.chat`);
* :func:`run_conversation`: a 2- to 4-way conversation from a scenario file or a topic
  (:mod:`doctune.converse.conversation`), each character its own adapter over one loaded base;
* :func:`list_conversations` / :func:`show_conversation`: the logs under ``<workspace>/conversations/``.

Reads the ``speeches`` artifact and the registry (character adapters); writes no artifact, only logs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from doctune.config import ConfigError, DoctuneConfig
from doctune.converse.log import list_conversations as _list
from doctune.converse.log import read_conversation, transcript_markdown
from doctune.stages import StageResult
from doctune.workspace import Workspace

log = logging.getLogger(__name__)

MAX_CHARACTERS = 4


def _stdout(text: str) -> None:
    """Write to the current ``sys.stdout`` (looked up per call: a test runner may replace it)."""
    sys.stdout.write(text)
    sys.stdout.flush()


def _switches(config: DoctuneConfig, rag: bool | None, bias: bool | None, policy: str | None) -> DoctuneConfig:
    updates: dict[str, Any] = {}
    if rag is not None:
        updates["rag"] = rag
    if bias is not None:
        updates["bias"] = bias
    if policy is not None:
        updates["policy"] = policy
    if not updates:
        return config
    return config.model_copy(update={"converse": config.converse.model_copy(update=updates)})


def _model_choice(workspace: Workspace, model: str | None) -> tuple[bool, str | None]:
    """(use adapters, a registry id to use for the one character) from the chat's MODEL argument."""
    if model is None:
        return True, None
    if model == "base":
        return False, None
    from doctune.registry import Registry

    return True, Registry(workspace).get(model).id  # RegistryError names the unknown id


def run_character_chat(
    config: DoctuneConfig,
    workspace: Workspace,
    character: str,
    model: str | None = None,
    rag: bool | None = None,
    bias: bool | None = None,
    read_line: Callable[[str], str] = input,
    write: Callable[[str], Any] = _stdout,
) -> str:
    """Chat with ``character`` (MODEL: a registry id of an adapter, ``base``, or None: its newest adapter); the id
    of the chat's log."""
    from doctune.converse.chat import CharacterChat, chat_loop
    from doctune.converse.session import open_session
    from doctune.registry import Registry

    config = _switches(config, rag, bias, None)
    use_adapters, entry_id = _model_choice(workspace, model)
    base = Registry(workspace).get(entry_id).base_model if entry_id else None
    session = open_session(config, workspace, [character], base_model=base, use_adapters=use_adapters)
    chat = CharacterChat(session, character, workspace.root, write, workspace)
    if entry_id:
        entry = Registry(workspace).get(entry_id)
        session.voices.add(chat.character, entry.id, workspace.root / entry.weights_path)
    chat_loop(chat, read_line)
    return chat.log.id


def run_conversation(
    config: DoctuneConfig,
    workspace: Workspace,
    characters: Sequence[str] = (),
    scenario_path: Path | None = None,
    topic: str = "",
    turns: int | None = None,
    seed: int | None = None,
    policy: str | None = None,
    rag: bool | None = None,
    bias: bool | None = None,
    join: bool = False,
    use_adapters: bool = True,
    base_model: str | None = None,
    read_line: Callable[[str], str] = input,
    write: Callable[[str], Any] | None = _stdout,
    conversation_id: str | None = None,
) -> StageResult:
    """One conversation (see the module docstring); its turns are logged as they finish, under ``conversation_id``
    when given (a caller that must know the log's id before the model is loaded: the workbench)."""
    from doctune.converse.conversation import ConversationRunner, ConversationSettings
    from doctune.converse.log import ConversationLog
    from doctune.converse.scenario import load_scenario, scenario_from_topic
    from doctune.converse.session import open_session

    if scenario_path is not None:
        scenario = load_scenario(scenario_path)  # ScenarioError names the file and the reason
        if characters:
            raise ConfigError("give --characters or --scenario, not both (the scenario lists its characters)")
    else:
        if not characters:
            raise ConfigError("converse needs --characters A,B[,C,D] or --scenario FILE")
        scenario = scenario_from_topic(list(characters), topic)
    if not 1 <= len(scenario.characters) <= MAX_CHARACTERS:
        raise ConfigError(f"a conversation has 1 to {MAX_CHARACTERS} characters, not {len(scenario.characters)}")
    config = _switches(config, rag, bias, policy)
    cfg = config.converse
    session = open_session(config, workspace, scenario.characters, base_model=base_model, use_adapters=use_adapters)
    scenario.characters = [session.add_character(c, workspace) for c in scenario.characters]
    settings = ConversationSettings(
        policy=scenario.policy or cfg.policy,
        max_turns=turns or scenario.turns or cfg.max_turns,
        context_turns=cfg.context_turns,
        stop_on_repeat=cfg.stop_on_repeat,
        seed=cfg.seed if seed is None else seed,
    )
    if turns:
        scenario.turns = turns
    header = {
        "characters": scenario.characters,
        "scenario": scenario.model_dump(mode="json"),
        "settings": {**session.settings(), "policy": settings.policy, "max_turns": settings.max_turns},
        "seed": settings.seed,
        "base_model": session.voices.base_label,
        "models": {c: session.voices.adapter_for(c) if use_adapters else None for c in scenario.characters},
    }
    log_ = ConversationLog(workspace.root, "conversation", header, conversation_id)
    runner = ConversationRunner(
        scenario,
        session.speak,
        session.cards,
        settings,
        log_,
        retrieve=session.retrieve,
        chooser=session.voices.choose_next,
        user_name=cfg.user_name if join else None,
        read_user=read_line if join else None,
        write=write,
        turn_settings=session.settings(),
    )
    records = runner.run()
    return StageResult(
        stage="converse",
        outputs={"log": str(log_.dir / "turns.jsonl"), "transcript": str(log_.dir / "transcript.md"), "id": log_.id},
        counts={"turns": len(records)},
        stats={"stop": runner.stop_reason, "id": log_.id, "settings": header["settings"]},
    )


def list_conversations(workspace: Workspace) -> list[dict[str, Any]]:
    """One row per logged conversation, oldest first."""
    rows = []
    for rec in _list(workspace.root):
        rows.append(
            {
                "id": rec.id,
                "kind": rec.header.get("kind", ""),
                "characters": ", ".join(rec.header.get("characters", [])),
                "turns": len(rec.turns),
                "started": rec.header.get("started_at", "")[:19],
                "title": (rec.header.get("scenario") or {}).get("title", ""),
            }
        )
    return rows


def show_conversation(workspace: Workspace, conversation_id: str) -> str:
    """The Markdown transcript of a conversation (rebuilt from its turns, so a killed one shows what finished)."""
    rec = read_conversation(workspace.root, conversation_id)
    return transcript_markdown(rec.header, rec.turns)
