"""The terminal chat with one character: your lines, its replies streamed, switches changed live.

Commands (also listed by ``/help``)::

    /rag on|off          retrieval of the character's own lines and the scene (shows the state without on/off)
    /bias on|off         logit-bias steering (boosted and suppressed words)
    /adapter on|off      the character's adapter (off: the base model and the card)
    /character NAME      talk to someone else (the conversation starts again)
    /sources             where the last reply's retrieved passages come from
    /words               the boosted and suppressed words, with the token ids they are biased on
    /settings            every switch and sampling setting
    /reset               forget the conversation
    /exit                end (Ctrl-D too; Ctrl-C stops a reply in progress, the log keeps the finished turns)

Each exchange is logged like a conversation (``conversations/<id>/``, kind ``chat``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from doctune.converse.conversation import Line, character_messages, clean_reply, prompt_sha256
from doctune.converse.log import ConversationLog, TurnRecord
from doctune.converse.session import CharacterSession, UnknownCharacter

log = logging.getLogger(__name__)

HELP = __doc__.split("::", 1)[1].split("Each exchange")[0].rstrip() if __doc__ else ""


class CharacterChat:
    """One chat: the session (model, switches), the character, what it heard, the log."""

    def __init__(
        self,
        session: CharacterSession,
        character: str,
        log_root: Any,
        write: Callable[[str], Any],
        workspace: Any = None,
        setting: str = "",
    ):
        self.session = session
        self.workspace = workspace
        self.write = write
        self.log_root = log_root
        self.setting = setting
        self.user = session.config.converse.user_name.upper()
        self.character = session.add_character(character, workspace)
        self.heard: list[Line] = []
        self.turn = 0
        self.log = self._open_log()

    def _open_log(self) -> ConversationLog:
        header = {
            "characters": [self.character],
            "scenario": {"title": f"Chat with {self.character.title()}", "setting": self.scene_line()},
            "settings": self.session.settings(),
            "seed": self.session.config.converse.seed,
            "base_model": self.session.voices.base_label,
            "models": {self.character: self.session.voices.adapter_for(self.character)},
        }
        return ConversationLog(self.log_root, "chat", header)

    def scene_line(self) -> str:
        play = self.session.plays.get(self.character, "")
        return self.setting or f"{play}. A stranger speaks to {self.character.title()}."

    def close(self) -> None:
        self.log.close()

    # -- commands ----------------------------------------------------------------------------------------------
    def command(self, text: str) -> bool:
        """Handle a slash command; False when the chat should end."""
        parts = text.split(maxsplit=1)
        name, arg = parts[0].lower(), (parts[1].strip() if len(parts) > 1 else "")
        s = self.session
        if name == "/exit":
            return False
        if name in ("/rag", "/bias", "/adapter"):
            attr = {"/rag": "rag", "/bias": "bias", "/adapter": "use_adapters"}[name]
            if arg.lower() in ("on", "off"):
                setattr(s, attr, arg.lower() == "on")
            elif arg:
                self.write(f"usage: {name} on|off\n")
                return True
            self.write(f"{name[1:]}: {'on' if getattr(s, attr) else 'off'}\n")
        elif name == "/character":
            if not arg:
                self.write(f"talking to {self.character}; /character NAME to change\n")
                return True
            try:
                self.character = s.add_character(arg, self.workspace)
            except UnknownCharacter as exc:
                self.write(f"{exc}\n")
                return True
            self.log.close()
            self.heard, self.turn = [], 0
            self.log = self._open_log()
            adapter = s.voices.adapter_for(self.character) or "none: base model + card"
            self.write(f"now talking to {self.character} (adapter {adapter})\n")
        elif name == "/sources":
            self.write(
                ("\n".join(s.last_sources) if s.last_sources else "(no passages retrieved for the last reply)") + "\n"
            )
        elif name == "/words":
            self.write(self._words() + "\n")
        elif name == "/settings":
            settings = {**s.settings(), "character": self.character, "adapter": s.voices.adapter_for(self.character)}
            self.write("\n".join(f"{k}: {v}" for k, v in settings.items()) + "\n")
        elif name == "/reset":
            self.heard = []
            self.write("(conversation cleared)\n")
        elif name == "/help":
            self.write(HELP.strip("\n") + "\n")
        else:
            self.write(f"unknown command {name}; /help lists them\n")
        return True

    def _words(self) -> str:
        steering = self.session.steering_for(self.character)
        rows = steering.describe() if hasattr(steering, "describe") else []
        lines = [f"boosted: {', '.join(self.session.boost.get(self.character, [])) or '(none)'}"]
        lines.append(f"suppressed: {', '.join(self.session.suppress.get(self.character, [])[:30])}")
        for row in rows[:24]:
            lines.append(f"  {row['kind']:<8} {row['variant']!r:<16} ids {row['ids']}")
        return "\n".join(lines)

    # -- turns -------------------------------------------------------------------------------------------------
    def say(self, text: str) -> str:
        """Your line, then the character's reply (streamed to ``write``); the reply."""
        s = self.session
        mine = Line(self.turn, self.user, text)
        self.heard.append(mine)
        self.log.append(TurnRecord(turn=self.turn, speaker=self.user, text=text, user=True, present=self._present()))
        self.turn += 1
        passages, sources = s.retrieve(self.character, text, self.heard)
        messages = character_messages(
            self.character,
            s.cards[self.character],
            self.scene_line(),
            self.heard,
            s.config.converse.context_turns,
            passages,
        )
        seed = s.config.converse.seed + self.turn
        self.write(f"{self.character}: ")
        reply = s.speak(self.character, messages, seed, self.write)
        self.write("\n")
        answer = clean_reply(reply.text, [self.user])
        self.heard.append(Line(self.turn, self.character, answer))
        self.log.append(
            TurnRecord(
                turn=self.turn,
                speaker=self.character,
                text=answer,
                adapter=reply.adapter,
                present=self._present(),
                prompt_sha256=prompt_sha256(messages),
                seed=seed,
                latency_s=round(reply.latency_s, 3),
                prompt_tokens=reply.prompt_tokens,
                completion_tokens=reply.completion_tokens,
                settings=s.settings(),
                sources=sources,
                boosted_used=reply.boosted_used,
            )
        )
        self.turn += 1
        return answer

    def _present(self) -> list[str]:
        return [self.character, self.user]


def chat_loop(chat: CharacterChat, read_line: Callable[[str], str]) -> None:
    """Read lines until /exit or end of input; Ctrl-C during a reply drops that reply, Ctrl-C at the prompt ends."""
    adapter = chat.session.voices.adapter_for(chat.character) or "none: base model + card"
    chat.write(f"Talking to {chat.character} (adapter {adapter}). /help lists the commands, /exit ends.\n")
    try:
        while True:
            try:
                line = read_line("> ")
            except (EOFError, KeyboardInterrupt):
                chat.write("\n")
                break
            text = line.strip()
            if not text:
                continue
            if text.startswith("/"):
                if not chat.command(text):
                    break
                continue
            try:
                chat.say(text)
            except KeyboardInterrupt:
                chat.write("\n[reply interrupted]\n")
    finally:
        chat.close()
        chat.write(f"log: {chat.log.dir.name}\n")
