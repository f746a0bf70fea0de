"""Conversation logs in the workspace: ``conversations/<id>/``.

    header.json      what was run: kind (chat | conversation), scenario, settings, seed, models (character ->
                     adapter id), started_at
    turns.jsonl      one line per finished turn, written and flushed (fsync) when the turn ends: a killed
                     conversation leaves a valid log up to its last finished turn
    transcript.md    the Markdown transcript, rewritten after each turn

``list_conversations`` and ``read_conversation`` read them back (a torn last line, from a kill mid-write, is
skipped and reported).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DIRNAME = "conversations"


@dataclass
class TurnRecord:
    """One finished turn."""

    turn: int
    speaker: str
    text: str
    adapter: str | None = None
    present: list[str] = field(default_factory=list)
    why: str = ""
    prompt_sha256: str = ""
    seed: int | None = None
    latency_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    boosted_used: list[str] = field(default_factory=list)
    user: bool = False


@dataclass
class ConversationRecord:
    id: str
    header: dict[str, Any]
    turns: list[TurnRecord]
    torn_lines: int = 0

    @property
    def path(self) -> str:
        return f"{DIRNAME}/{self.id}"


def new_id(kind: str, names: list[str]) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    who = "-".join("".join(ch for ch in n.lower() if ch.isalnum()) for n in names)[:40]
    return f"{stamp}-{kind}-{who}"


class ConversationLog:
    """Writes one conversation's header, turns and transcript (see the module docstring)."""

    def __init__(self, root: Path, kind: str, header: Mapping[str, Any], conversation_id: str | None = None):
        names = list(header.get("characters", []))
        self.id = conversation_id or new_id(kind, names)
        self.dir = Path(root) / DIRNAME / self.id
        self.dir.mkdir(parents=True, exist_ok=False)
        self.header = {"id": self.id, "kind": kind, **header, "started_at": datetime.now(UTC).isoformat()}
        (self.dir / "header.json").write_text(json.dumps(self.header, indent=2, ensure_ascii=False), encoding="utf-8")
        self.turns: list[TurnRecord] = []
        self._fh = (self.dir / "turns.jsonl").open("a", encoding="utf-8")

    def append(self, turn: TurnRecord) -> None:
        """Write a finished turn (one line, flushed to disk) and the transcript."""
        self._fh.write(json.dumps(asdict(turn), ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.turns.append(turn)
        (self.dir / "transcript.md").write_text(transcript_markdown(self.header, self.turns), encoding="utf-8")

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        (self.dir / "transcript.md").write_text(transcript_markdown(self.header, self.turns), encoding="utf-8")

    def __enter__(self) -> ConversationLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def transcript_markdown(header: Mapping[str, Any], turns: list[TurnRecord]) -> str:
    scenario = header.get("scenario") or {}
    lines = [f"# {scenario.get('title') or header.get('kind', 'conversation')}", ""]
    if scenario.get("setting"):
        lines += [f"*{scenario['setting']}*", ""]
    settings = header.get("settings") or {}
    shown = {k: settings[k] for k in ("rag", "bias", "policy", "temperature", "max_tokens") if k in settings}
    lines += [
        f"`{header.get('id', '')}` · seed {header.get('seed')} · "
        + ", ".join(f"{k} {v}" for k, v in shown.items())
        + f" · base {header.get('base_model', '')}",
        "",
    ]
    present: list[str] | None = None
    for t in turns:
        if present is not None and t.present != present:
            came = [c for c in t.present if c not in present]
            left = [c for c in present if c not in t.present]
            lines += [
                f"*{' '.join([*(f'Enter {c.title()}.' for c in came), *(f'Exit {c.title()}.' for c in left)])}*",
                "",
            ]
        present = t.present
        who = f"**{t.speaker}**" + (" (you)" if t.user else "")
        lines += [who, t.text.strip() or "*(says nothing)*", ""]
    return "\n".join(lines)


def read_conversation(root: Path, conversation_id: str) -> ConversationRecord:
    """The conversation ``conversation_id`` (a unique prefix is enough); FileNotFoundError naming what exists."""
    base = Path(root) / DIRNAME
    matches = sorted(p for p in base.glob(f"{conversation_id}*") if p.is_dir()) if base.is_dir() else []
    if len(matches) != 1:
        what = "no" if not matches else f"{len(matches)}"
        raise FileNotFoundError(f"{what} conversation matches {conversation_id!r} under {DIRNAME}/")
    folder = matches[0]
    header = json.loads((folder / "header.json").read_text(encoding="utf-8"))
    turns, torn = [], 0
    path = folder / "turns.jsonl"
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                turns.append(TurnRecord(**json.loads(line)))
            except (json.JSONDecodeError, TypeError):
                torn += 1
    if torn:
        log.warning("%s: %d unreadable line(s) in turns.jsonl (a turn cut by a kill)", folder.name, torn)
    return ConversationRecord(id=folder.name, header=header, turns=turns, torn_lines=torn)


def list_conversations(root: Path) -> list[ConversationRecord]:
    base = Path(root) / DIRNAME
    if not base.is_dir():
        return []
    out = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and (p / "header.json").exists()):
        try:
            out.append(read_conversation(root, folder.name))
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("%s: unreadable conversation: %s", folder.name, exc)
    return out
