"""Who speaks, how much, after whom, and with which words: statistics of a play's ``Speech`` rows.

Everything here is a pure function of the rows (no file, no model). :func:`analyse` groups the speeches by play
(``doc_id``) and returns one :class:`PlayStats` per play with

* one :class:`CharacterStats` per speaker (speeches, words, lines; listed persons who never speak with zeros),
* speeches, lines and words per character and act (:class:`ActCount`),
* who speaks after whom: transition counts speaker -> next speaker within a scene (:func:`transitions`),
* each character's most distinctive words against the rest of the play (:func:`distinctive_words`): the log-odds
  ratio with an informative Dirichlet prior of Monroe, Colaresi & Quinn (2008), "Fightin' Words", with z-scores.

Words are lowercase tokens of letters with inner apostrophes kept (``o'er``, ``i'll``) and a few elided leading
apostrophes (``'tis``, ``'twas``); curly apostrophes count as straight ones. A joint speech (speaker ``A/B``) is
kept under its joint name, flagged ``joint``, and never counts for ``A`` or ``B`` alone (as in the ``persons``
artifact).
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import Any

from doctune.records import Person, Speech

#: leading elisions whose apostrophe belongs to the word ('tis), not to a quotation mark
_ELISIONS = "tis|twas|twere|twill|twould|gainst|mongst|em"
TOKEN_RE = re.compile(rf"(?:'(?=(?:{_ELISIONS})\b))?[^\W\d_]+(?:'[^\W\d_]+)*")
#: the Dirichlet prior of the log-odds, as a share of the play's word counts (see :func:`distinctive_words`)
PRIOR_SHARE = 0.1


def tokenize(text: str) -> list[str]:
    """Lowercase words with apostrophes kept: ``"O'er the hill, 'tis I!"`` -> ``["o'er", "the", "hill", "'tis", "i"]``."""
    return TOKEN_RE.findall(text.lower().replace("\u2019", "'").replace("\u2018", "'"))


def count_lines(text: str) -> int:
    """Non-blank lines of a speech (verse lines as printed)."""
    return sum(1 for line in text.splitlines() if line.strip())


def is_joint(speaker: str) -> bool:
    """A joint speech's speaker (``A/B``)."""
    return "/" in speaker


@dataclass
class CharacterStats:
    """One speaker of a play."""

    name: str
    speeches: int = 0
    words: int = 0
    lines: int = 0
    word_share: float = 0.0
    description: str = ""
    joint: bool = False
    unresolved: bool = False


@dataclass
class ActCount:
    """What one character says in one act."""

    character: str
    act: str
    speeches: int = 0
    lines: int = 0
    words: int = 0


@dataclass
class Transition:
    """``count`` times ``source`` spoke and ``target`` had the next speech of the same scene."""

    source: str
    target: str
    count: int


@dataclass
class DistinctiveWord:
    """A word a character uses more than the rest of the play: log-odds ratio ``delta`` and its z-score."""

    word: str
    count: int
    rest_count: int
    delta: float
    z: float


@dataclass
class PlayStats:
    """Everything computed for one play."""

    play: str
    doc_id: str
    speeches: int
    words: int
    acts: list[str]
    scenes: int
    characters: list[CharacterStats]
    by_act: list[ActCount]
    transitions: list[Transition]
    distinctive: dict[str, list[DistinctiveWord]] = field(default_factory=dict)

    def top_characters(self, n: int) -> list[str]:
        """The ``n`` single (not joint) speakers with the most words."""
        return [c.name for c in self.characters if not c.joint and c.words > 0][:n]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def character_counts(speeches: Iterable[Speech], persons: Iterable[Person] = ()) -> list[CharacterStats]:
    """Speeches, words and lines per speaker, most words first; ``persons`` adds descriptions and silent characters."""
    rows: dict[str, CharacterStats] = {}
    for speech in speeches:
        row = rows.setdefault(speech.speaker, CharacterStats(speech.speaker, joint=is_joint(speech.speaker)))
        row.speeches += 1
        row.words += len(tokenize(speech.text))
        row.lines += count_lines(speech.text)
        row.unresolved = row.unresolved or speech.unresolved
    for person in persons:
        row = rows.setdefault(person.name, CharacterStats(person.name, joint=is_joint(person.name)))
        row.description = row.description or person.description
    total = sum(r.words for r in rows.values())
    for row in rows.values():
        row.word_share = round(row.words / total, 4) if total else 0.0
    return sorted(rows.values(), key=lambda r: (-r.words, -r.speeches, r.name))


def acts_in_order(speeches: Sequence[Speech]) -> list[str]:
    """Act labels in the order they first appear (``""`` when the play has no acts)."""
    return list(dict.fromkeys(s.act for s in sorted(speeches, key=lambda s: s.index)))


def act_counts(speeches: Sequence[Speech]) -> list[ActCount]:
    """Speeches, lines and words per (character, act), acts in play order."""
    order = {act: i for i, act in enumerate(acts_in_order(speeches))}
    rows: dict[tuple[str, str], ActCount] = {}
    for speech in speeches:
        row = rows.setdefault((speech.speaker, speech.act), ActCount(speech.speaker, speech.act))
        row.speeches += 1
        row.lines += count_lines(speech.text)
        row.words += len(tokenize(speech.text))
    return sorted(rows.values(), key=lambda r: (r.character, order[r.act]))


def transitions(speeches: Sequence[Speech]) -> list[Transition]:
    """Speaker -> next speaker counts within each scene (a scene's last speech has no successor), most first."""
    scenes: dict[tuple[str, str, str], list[Speech]] = defaultdict(list)
    for speech in speeches:
        scenes[(speech.doc_id, speech.act, speech.scene)].append(speech)
    counts: Counter[tuple[str, str]] = Counter()
    for scene in scenes.values():
        ordered = sorted(scene, key=lambda s: s.index)
        counts.update((a.speaker, b.speaker) for a, b in pairwise(ordered))
    return [Transition(a, b, n) for (a, b), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def log_odds_dirichlet(
    counts: Mapping[str, int], rest: Mapping[str, int], prior: Mapping[str, float]
) -> dict[str, tuple[float, float]]:
    """Word -> (log-odds ratio, z-score) of ``counts`` against ``rest`` with Dirichlet prior ``prior``.

    Monroe et al. (2008), eq. 16 and 22: with ``a_w`` the prior of word ``w``, ``a0 = sum(a)``, ``n`` the size of
    a side and ``y_w`` its count, ``delta_w = log((y_w + a_w) / (n + a0 - y_w - a_w)) - (same for the rest)`` and
    ``var(delta_w) ~ 1 / (y_w + a_w) + 1 / (y_rest_w + a_w)``; ``z = delta / sqrt(var)``. Words the prior does
    not know are skipped.
    """
    n_i, n_j = sum(counts.values()), sum(rest.values())
    a0 = sum(prior.values())
    out: dict[str, tuple[float, float]] = {}
    for word, a_w in prior.items():
        if a_w <= 0:
            continue
        y_i, y_j = counts.get(word, 0), rest.get(word, 0)
        odds_i = (y_i + a_w) / (n_i + a0 - y_i - a_w)
        odds_j = (y_j + a_w) / (n_j + a0 - y_j - a_w)
        delta = math.log(odds_i) - math.log(odds_j)
        variance = 1.0 / (y_i + a_w) + 1.0 / (y_j + a_w)
        out[word] = (delta, delta / math.sqrt(variance))
    return out


def distinctive_words(
    speeches: Sequence[Speech],
    characters: Iterable[str] | None = None,
    top_words: int = 10,
    prior_share: float = PRIOR_SHARE,
    min_count: int = 2,
) -> dict[str, list[DistinctiveWord]]:
    """Each character's ``top_words`` most distinctive words against the rest of the play, highest z first.

    The informative prior is the play's own word distribution scaled to ``prior_share`` of the play's size
    (``a_w = prior_share * count of w in the play``). A prior as large as the play itself
    (``prior_share=1``) swamps a minor character's counts and ranks function words (the, and) first; a tenth
    keeps the shrinkage of rare words while content words come through. Only words the character says at least
    ``min_count`` times and with a positive z are listed. ``characters``: whom to score (default: every single
    speaker).
    """
    per_speaker: dict[str, Counter[str]] = defaultdict(Counter)
    for speech in speeches:
        per_speaker[speech.speaker].update(tokenize(speech.text))
    play: Counter[str] = Counter()
    for words in per_speaker.values():
        play.update(words)
    total = sum(play.values())
    if not total:
        return {}
    if prior_share <= 0:
        raise ValueError("distinctive_words: prior_share must be positive")
    prior = {w: n * prior_share for w, n in play.items()}
    names = list(characters) if characters is not None else [s for s in per_speaker if not is_joint(s)]
    out: dict[str, list[DistinctiveWord]] = {}
    for name in names:
        own = per_speaker.get(name, Counter())
        if not own:
            continue
        rest = play - own
        scores = log_odds_dirichlet(own, rest, {w: prior[w] for w in own})
        ranked = sorted(
            (DistinctiveWord(w, own[w], rest.get(w, 0), round(d, 4), round(z, 4)) for w, (d, z) in scores.items()),
            key=lambda dw: (-dw.z, dw.word),
        )
        out[name] = [dw for dw in ranked if dw.z > 0 and dw.count >= min_count][:top_words]
    return out


def play_stats(
    speeches: Sequence[Speech],
    persons: Iterable[Person] = (),
    top_words: int = 10,
    prior_share: float = PRIOR_SHARE,
    min_count: int = 2,
) -> PlayStats:
    """All statistics of one play's speeches (and its ``persons`` rows, if any)."""
    if not speeches:
        raise ValueError("play_stats: no speeches")
    characters = character_counts(speeches, persons)
    return PlayStats(
        play=speeches[0].play,
        doc_id=speeches[0].doc_id,
        speeches=len(speeches),
        words=sum(c.words for c in characters),
        acts=acts_in_order(speeches),
        scenes=len({(s.act, s.scene) for s in speeches}),
        characters=characters,
        by_act=act_counts(speeches),
        transitions=transitions(speeches),
        distinctive=distinctive_words(speeches, top_words=top_words, prior_share=prior_share, min_count=min_count),
    )


def analyse(
    speeches: Iterable[Speech], persons: Iterable[Person] = (), top_words: int = 10, min_count: int = 2
) -> list[PlayStats]:
    """One :class:`PlayStats` per play (by ``doc_id``), plays in the order their first speech appears."""
    by_doc: dict[str, list[Speech]] = defaultdict(list)
    for speech in speeches:
        by_doc[speech.doc_id].append(speech)
    persons_by_doc: dict[str, list[Person]] = defaultdict(list)
    for person in persons:
        persons_by_doc[person.doc_id].append(person)
    return [
        play_stats(rows, persons_by_doc.get(doc_id, []), top_words=top_words, min_count=min_count)
        for doc_id, rows in by_doc.items()
    ]
