"""Turn policies: who speaks next in a conversation.

* ``round_robin``: the present characters in the scenario's order, after the last speaker;
* ``addressed``: the present character the last turn names (by full name or any word of it, "Lady Macbeth",
  "Macbeth"; a longer name wins over a shorter one it contains) answers next; when nobody is named, round robin;
* ``natural``: a model picks: each present character other than the last speaker is scored by the likelihood of
  its name after the conversation so far (:data:`Chooser`); ties and failures fall back to round robin.

:func:`expected_speaker` is what each policy demands, so compliance can be checked turn by turn.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

#: (the conversation so far as text, the candidates) -> the chosen candidate
Chooser = Callable[[str, Sequence[str]], str]


def round_robin(order: Sequence[str], present: Sequence[str], last: str | None) -> str:
    """The next present character after ``last`` in ``order`` (the first present one when ``last`` is None)."""
    if not present:
        raise ValueError("nobody is present to speak")
    if last is None or last not in order:
        return next(c for c in order if c in present)
    start = order.index(last)
    for step in range(1, len(order) + 1):
        candidate = order[(start + step) % len(order)]
        if candidate in present:
            return candidate
    return present[0]


def _name_patterns(name: str) -> list[str]:
    """The forms a character can be addressed by: the full name and each word of it longer than 2 letters,
    except words like "first" or "lady" that name nobody alone."""
    words = [w for w in re.split(r"[\s/]+", name) if len(w) > 2]
    generic = {"LADY", "LORD", "KING", "QUEEN", "FIRST", "SECOND", "THIRD", "OLD", "YOUNG", "SIR"}
    return [name, *[w for w in words if w.upper() not in generic and w.upper() != name.upper()]]


def addressed_character(text: str, candidates: Sequence[str]) -> str | None:
    """The candidate ``text`` names; the earliest mention wins, and at one position the longest name
    ("Lady Macbeth" over "Macbeth")."""
    best: tuple[int, int, int, str] | None = None
    for name in candidates:
        for n, form in enumerate(_name_patterns(name)):
            match = re.search(rf"\b{re.escape(form)}\b", text, flags=re.IGNORECASE)
            if match:  # earliest, then longest, then a full name before a word of another's name
                key = (match.start(), -len(match.group(0)), min(n, 1), name)
                if best is None or key < best:
                    best = key
    if best is None:
        return None
    return best[3]


def expected_speaker(
    policy: str, order: Sequence[str], present: Sequence[str], last_speaker: str | None, last_text: str
) -> str | None:
    """The speaker ``policy`` demands next, or None when the policy leaves a choice (natural)."""
    others = [c for c in present if c != last_speaker]
    if policy == "round_robin":
        return round_robin(order, present, last_speaker)
    if policy == "addressed":
        named = addressed_character(last_text, others) if last_text else None
        return named or round_robin(order, present, last_speaker)
    return None


def next_speaker(
    policy: str,
    order: Sequence[str],
    present: Sequence[str],
    last_speaker: str | None,
    last_text: str,
    transcript: str,
    chooser: Chooser | None = None,
) -> tuple[str, str]:
    """(who speaks next, why) under ``policy``."""
    if policy in ("round_robin", "addressed"):
        speaker = expected_speaker(policy, order, present, last_speaker, last_text)
        assert speaker is not None
        named = policy == "addressed" and speaker != round_robin(order, present, last_speaker)
        return speaker, "addressed" if named else "in order"
    candidates = [c for c in present if c != last_speaker] or list(present)
    if chooser is None or len(candidates) == 1:
        return round_robin(order, present, last_speaker), "in order (nothing to choose)"
    try:
        choice = chooser(transcript, candidates)
    except Exception as exc:  # a failed pick is not a failed conversation
        log.warning("natural turn policy: the model could not pick (%s); round robin", exc)
        return round_robin(order, present, last_speaker), "in order (model failed)"
    if choice not in candidates:
        return round_robin(order, present, last_speaker), "in order (model picked nobody present)"
    return choice, "model's pick"
