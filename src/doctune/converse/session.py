"""Everything a character chat or conversation needs, opened once from the config and the workspace.

:func:`open_session` finds each character in the ``speeches`` artifact (an unknown name is an error listing the
known ones), its newest registered adapter for the chosen base model (none: the base model and the card, said
once), its card (``plays.persons`` or the play's list of persons), its boost words (the distinctive content words
of the exploration statistics) and the suppressed words (``converse.suppress`` and, with
``converse.suppress_other_plays``, the names of other plays' characters), and builds the play's retrieval index
when retrieval is on. ``rag`` and ``bias`` can be switched per session (``/rag off``); :meth:`CharacterSession.speak`
and :meth:`CharacterSession.retrieve` are the :class:`~doctune.converse.conversation.ConversationRunner`'s model
side.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from doctune.config import ConfigError
from doctune.converse.conversation import Line, Reply
from doctune.records import Person, Speech

if TYPE_CHECKING:
    from doctune.config import DoctuneConfig
    from doctune.converse.voices import Voices
    from doctune.workspace import Workspace

log = logging.getLogger(__name__)


class UnknownCharacter(ConfigError):
    """A character that no play in the workspace has."""


def resolve_character(name: str, speeches: Sequence[Speech]) -> str:
    """The canonical name of ``name`` (any case; a unique word of a name works: "ophelia", "lady macbeth")."""
    names = sorted({s.speaker for s in speeches if "/" not in s.speaker})
    wanted = " ".join(name.split()).upper()
    if wanted in names:
        return wanted
    partial = [n for n in names if wanted in n.split()]
    if len(partial) == 1:
        return partial[0]
    raise UnknownCharacter(
        f"unknown character {name!r}: the plays have " + ", ".join(names[:40]) + (" ..." if len(names) > 40 else "")
    )


@dataclass
class CharacterSession:
    """The loaded model, adapters and per-character resources; ``rag`` and ``bias`` switchable live."""

    config: DoctuneConfig
    voices: Voices
    speeches: list[Speech]
    cards: dict[str, str]
    plays: dict[str, str]
    boost: dict[str, list[str]] = field(default_factory=dict)
    suppress: dict[str, list[str]] = field(default_factory=dict)
    rag: bool = True
    bias: bool = True
    use_adapters: bool = True
    index: Any = None
    embedder_spec: Any = None
    cache_path: Any = None
    _steering: dict[str, Any] = field(default_factory=dict)
    _vocabulary: list[str] | None = None
    _lower_words: set[str] | None = None
    last_sources: list[str] = field(default_factory=list)

    # -- characters -----------------------------------------------------------------------------------------
    def add_character(self, name: str, workspace: Workspace | None = None) -> str:
        """Load ``name``'s adapter, card and words if not loaded yet; its canonical name."""
        from doctune.converse.steering import boost_words_for

        canonical = resolve_character(name, self.speeches)
        if canonical in self.cards:
            return canonical
        play = next(s.play for s in self.speeches if s.speaker == canonical)
        self.plays[canonical] = play
        self.cards[canonical] = _card(canonical, play, self.config, workspace)
        cfg = self.config.converse
        own_play = [s for s in self.speeches if s.play == play]
        self.boost[canonical] = boost_words_for(own_play, canonical, cfg.boost_words) if cfg.boost_words else []
        others = sorted({s.speaker for s in self.speeches if s.play != play and "/" not in s.speaker})
        names = [w.title() for n in others for w in n.split() if len(w) > 2] if cfg.suppress_other_plays else []
        names = [w for w in names if w.lower() not in self._common_words()]  # "Man" of OLD MAN is no name
        self.suppress[canonical] = list(dict.fromkeys([*cfg.suppress, *names]))
        if workspace is not None:
            _load_adapter(self, canonical, workspace)
        return canonical

    def _common_words(self) -> set[str]:
        """Words the plays write in lower case (common nouns: a character called OLD MAN does not ban "man")."""
        if self._lower_words is None:
            import re

            self._lower_words = {w for s in self.speeches for w in re.findall(r"\b[a-z][a-z']+\b", s.text)}
        return self._lower_words

    def steering_for(self, character: str) -> Any:
        from doctune.converse.steering import build_steering, hf_tokenize, hf_vocabulary

        if character not in self._steering:
            tokenizer = self.voices.tokenizer
            if self._vocabulary is None:  # other spellings of a suppressed word are banned too (steering.SpellingBan)
                self._vocabulary = hf_vocabulary(tokenizer)
            cfg = self.config.converse
            self._steering[character] = build_steering(
                hf_tokenize(tokenizer),
                self.boost.get(character, []),
                self.suppress.get(character, []),
                boost_bias=cfg.boost_bias,
                suppress_bias=cfg.suppress_bias,
                vocabulary=self._vocabulary,
            )
        return self._steering[character]

    # -- the runner's model side ------------------------------------------------------------------------------
    def speak(
        self, character: str, messages: list[dict[str, str]], seed: int, write: Callable[[str], Any] | None
    ) -> Reply:
        from doctune.converse.steering import hf_logits_processor

        cfg = self.config.converse
        processors = [hf_logits_processor(self.steering_for(character))] if self.bias else []
        return self.voices.speak(
            character,
            messages,
            seed,
            write,
            max_tokens=cfg.max_tokens,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            repetition_penalty=cfg.repetition_penalty,
            adapter=True if self.use_adapters else None,
            logits_processors=processors,
            boost_words=self.boost.get(character, []),
        )

    def retrieve(self, character: str, query: str, heard: Sequence[Line]) -> tuple[str, list[str]]:
        """Retrieved passages for ``character`` (nothing when ``rag`` is off), and their sources."""
        if not self.rag:
            return "", []
        from doctune.converse.retrieval import passages_prompt

        cfg = self.config.converse
        index = self._index()
        passages = index.retrieve(query, character, upto_index=cfg.upto, k_own=cfg.rag_own, k_scene=cfg.rag_scene)
        self.last_sources = [p.source() for p in passages]
        return passages_prompt(passages, cfg.rag_max_chars), self.last_sources

    def _index(self) -> Any:
        if self.index is None:
            from doctune.converse.retrieval import PlayIndex
            from doctune.curate.embeddings import EmbeddingCache, create_embedder

            cache = EmbeddingCache(self.cache_path) if self.cache_path else None
            self.index = PlayIndex.build(self.speeches, create_embedder(self.embedder_spec), cache)
        return self.index

    def settings(self) -> dict[str, Any]:
        cfg = self.config.converse
        return {
            "rag": self.rag,
            "bias": self.bias,
            "adapters": self.use_adapters,
            "temperature": cfg.temperature,
            "top_p": cfg.top_p,
            "max_tokens": cfg.max_tokens,
            "repetition_penalty": cfg.repetition_penalty,
            "boost_bias": cfg.boost_bias,
            "context_turns": cfg.context_turns,
            "base_model": self.voices.base_name,
        }


def _card(name: str, play: str, config: DoctuneConfig, workspace: Workspace | None) -> str:
    from doctune.recipes.character import character_card

    overrides = {k.strip().upper(): v for k, v in config.plays.persons.items()}
    description = overrides.get(name, "")
    if not description and workspace is not None and workspace.freshness("persons", config) != "missing":
        persons = workspace.read_rows("persons", Person, config)
        description = next((p.description for p in persons if p.play == play and p.name == name), "")
    return character_card(name, play, description)


def _load_adapter(session: CharacterSession, character: str, workspace: Workspace) -> None:
    from doctune.evaluate.recipe_eval import latest_entries
    from doctune.recipes import get_recipe
    from doctune.registry import Registry

    base = session.voices.base_label
    entries = [
        e
        for e in latest_entries(Registry(workspace).list_entries(), get_recipe("character"))
        if e.labels.get("character", "").upper() == character and e.base_model == base
    ]
    if not entries:
        log.warning(
            "%s has no adapter on %s: the base model and the card speak for it "
            "(train one: doctune train --recipe character --character %s)",
            character,
            base,
            character.title(),
        )
        return
    entry = entries[-1]
    session.voices.add(character, entry.id, workspace.root / entry.weights_path)


def open_session(
    config: DoctuneConfig,
    workspace: Workspace,
    characters: Sequence[str],
    base_model: str | None = None,
    use_adapters: bool = True,
) -> CharacterSession:
    """A session for ``characters`` on ``base_model`` (default: the configured student's base)."""
    from doctune.converse.voices import Voices
    from doctune.train.resolve import base_model_dir, student_base

    speeches = workspace.read_rows("speeches", Speech, config)
    if not speeches:
        raise ConfigError("no speeches in the workspace: `doctune ingest` a play first")
    for name in characters:  # fail on a typo before loading a model
        resolve_character(name, speeches)
    base = base_model or student_base(config)
    voices = Voices(base_model_dir(base))
    voices.base_label = base
    cfg = config.converse
    session = CharacterSession(
        config=config,
        voices=voices,
        speeches=speeches,
        cards={},
        plays={},
        rag=cfg.rag,
        bias=cfg.bias,
        use_adapters=use_adapters,
        embedder_spec=config.models.embedder,
        cache_path=workspace.cache_dir / "embeddings.sqlite",
    )
    for name in characters:
        session.add_character(name, workspace)
    return session
