"""Answer spans chosen by rule, for the small-model recipe (``generate.strategy: span``).

The source supplies the fact: for a cited sentence, a written rule picks the shortest part of it that
answers one question (a number with its unit, a name, a reason clause, a definition's complement, the
steps of a procedure, an object). The rule also fixes the question word, an in-situ template question
(the sentence with the span replaced by the question phrase, always answerable by construction), the
category and the difficulty. The model only rewrites the question (``generate.span_items``).

Rules, tried in this order; the first that matches a sentence wins:

========== =========================================== ============== ===========
kind       span                                        question word  category
========== =========================================== ============== ===========
procedure  the action of "To <goal>, <action>" or      How            procedural
           "<Imperative> ... to <goal>"
reason     "because / so that / due to / in order to   Why            reasoning
           ..." clause
number     a number with its qualifier and unit        How many /     factual
                                                       How much /
                                                       How long /
                                                       In what year
name       what follows "called / named / known as"    What           factual
use        X in "X can be / is used to <goal>"         What           application
definition the complement of "<Subject> is a/an/the..." What           conceptual
passive    "when / by ..." after "<Subject> is <verb>ed"   When / By what conceptual
verb       the object of "<Subject> has/provides/..."  What           factual
object     the last phrase after a preposition         What           factual
========== =========================================== ============== ===========

Difficulty (1-10), by ``span_difficulty``: a base per kind (number, name, object 1; definition, passive,
verb, use 2; procedure 3; reason 4), +1 when the answer has more than 5 content words, +1 when the question shares
less than half its content words with the cited sentence (the model reworded it), +2 for a multi-chunk
item; at most 10.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from doctune.textmatch import content_words

QUALIFIERS = r"(?:up to|at least|at most|about|around|approximately|over|under|more than|less than|nearly|almost)"
_NUMBER_WORDS = r"(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred)"
_NUMBER = re.compile(
    rf"(?<![\w.$`/:=#-])(?P<qual>{QUALIFIERS}\s+)?(?P<num>\d+(?:[.,]\d+)*|{_NUMBER_WORDS})(?![\w.-]*\d)"
    r"(?:\s*(?P<unit>%|percent\b|[a-z][a-z-]* per [a-z]+\b|(?:[a-z][a-z-]*\s)?(?!(?:is|was|has|as|this|its|his|does|thus|us|yes)\b)[a-z][a-z-]*s\b"
    r"|(?:km|m|cm|mm|kg|g|mg|ml|mb|gb|kb|tb|ms|hz|khz|mhz|ghz|kw|kwh|mph|bit|byte|degree|°c|°f)\b))?",
    re.IGNORECASE,
)
_TIME_UNITS = re.compile(r"^(?:second|minute|hour|day|week|month|year|decade|century|centuries|millisecond)s?$")
_UNIT_STOP = frozenset(
    [
        "and",
        "or",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "with",
        "from",
        "by",
        "is",
        "are",
        "was",
        "were",
        "the",
        "a",
        "an",
        "than",
        "which",
        "that",
        "as",
    ]
)
_REASON = re.compile(r"^(?P<main>.{15,}?),?\s+(?P<answer>(?:because|so that|due to|in order to)\s+.{5,})$", re.I)
_TO_GOAL = re.compile(r"^To (?P<goal>[a-z][^,;:]{5,}), (?P<answer>.{8,})$")
IMPERATIVES = (
    "Press|Click|Run|Use|Set|Open|Connect|Install|Create|Call|Hold|Turn|Insert|Remove|Type|Select|Enter|Choose|Add|"
    "Keep|Plug|Unplug|Restart|Tap|Push|Pull|Attach|Replace|Clean|Store|Wait|Place|Change|Check|Make|Put|Avoid|Do"
)
_IMPERATIVE = re.compile(
    rf"^(?P<answer>(?:{IMPERATIVES})\b.{{5,}}?)\s+(?:in order )?to (?!(?:a|an|the|your|my|its|their|this|each)\b)"
    r"(?P<goal>[a-z][^,;]{5,})$"
)
_NAME = re.compile(r"\b(?:called|named|known as)\s+(?P<answer>[`\"'“]?[A-Za-z_][\w.'’-]*[`\"'”]?(?:\s+[A-Z][\w'’-]*)*)")
_USE = re.compile(r"^(?P<answer>.{3,60}?)\s+(?P<verb>can be|is|are)\s+used\s+(?P<prep>to|for)\s+(?P<goal>.{5,})$")
_SUBJECT = r"(?P<subj>(?:[A-Z][\w'’`-]*|`[^`]+`)(?:\s+[\w'’`()-]+){0,6}?)"
_DEFINITION = re.compile(rf"^{_SUBJECT}\s+(?P<cop>is|are|was|were)\s+(?P<answer>(?:a|an|the|one)\s.{{5,}})$")
_VERB_TEXT = """provide contain include support allow require return accept hold carry generate need offer store
define take give pass rotate trap produce create use perform invoke enable block make run call read
write open close change protect measure control connect send receive show display print reach cover
mark describe replace remove add keep set let cause prevent reduce increase improve mean last exceed
shut install broadcast encrypt drive link pause supply"""
_VERB_STEMS = frozenset(_VERB_TEXT.split())
_IRREGULAR = {"has": "have", "have": "have", "had": "have", "made": "make", "ran": "run", "took": "take",
              "gave": "give", "held": "hold", "kept": "keep", "sent": "send", "let": "let", "set": "set"}  # fmt: skip
_COPULAS = frozenset(["is", "are", "was", "were", "be", "been", "being"])
_PASSIVE = re.compile(
    rf"^{_SUBJECT}\s+(?P<cop>is|are|was|were)\s+(?P<part>[a-z]+ed)\s+(?P<answer>(?P<prep>when|by|after|before|during)\s.{{4,}})$"
)
_NOT_SUBJECT_TEXT = """indeed however of thus therefore also moreover so then incidentally still yet in on at for if when
while although because as after before lacking besides instead otherwise hence nevertheless but and or obviously"""
_NOT_SUBJECT_START = frozenset(_NOT_SUBJECT_TEXT.split())
_GENERIC_WORDS = frozenset(["detail", "respect", "way", "problem", "session", "example", "case", "time", "end", "part"])
_PARTICIPLE_NEXT = frozenset(["to", "by", "in", "from", "with", "on", "at", "as", "for", "into"])
_SUBJECT_START = re.compile(r"^(?:[A-Z][\w'’`-]*|`[^`]+`)$")
_PREPOSITION = re.compile(
    r"\s(?P<prep>of|in|on|at|for|with|from|through|into|along|across|by|over|under)\s+(?!.*\s(?:of|in|on|at|for|with|from|through|into|along|across|by|over|under)\s)(?P<answer>[^,;:]+)$"
)
_LEADING_NOISE = re.compile(r"^(?:\*\*[^*]+\*\*\s*|[-*]\s+|\d+[.)]\s+|\(\s*)+")
_PARAGRAPH = re.compile(r"\n\s*\n")
_PRONOUN = frozenset(
    [
        "i",
        "you",
        "he",
        "she",
        "it",
        "we",
        "they",
        "this",
        "that",
        "there",
        "these",
        "those",
        "here",
        "what",
        "which",
        "who",
    ]
)
_MODALS = frozenset(
    ["can", "could", "may", "might", "must", "shall", "should", "will", "would", "do", "does", "did", "not"]
)
_AUXILIARY_OBJECT = re.compile(r"^(?:\w+ed|been|heard|seen|done|made|got|gone|had|known|given|taken|written)\b")
_QUESTION_WORDS = {
    "procedure": ("How",),
    "reason": ("Why",),
    "name": ("What", "Which"),
    "use": ("What", "Which"),
    "definition": ("What",),
    "verb": ("What", "Which"),
    "object": ("What", "Which", "Where", "Who"),
}
CATEGORIES = {
    "passive": "conceptual",
    "procedure": "procedural",
    "reason": "reasoning",
    "number": "factual",
    "name": "factual",
    "use": "application",
    "definition": "conceptual",
    "verb": "factual",
    "object": "factual",
}
BASE_DIFFICULTY = {
    "passive": 2,
    "number": 1,
    "name": 1,
    "object": 1,
    "definition": 2,
    "verb": 2,
    "use": 2,
    "procedure": 3,
    "reason": 4,
}


_ALWAYS_SOURCE = r"(text|passages?|chunks?|excerpts?)"  # "the text" is nearly always the input itself
_SOMETIMES_SOURCE = r"(documents?|articles?|sections?|paragraphs?|speech|poem|chapter)"
_REFERS_TO_SOURCE = re.compile(
    rf"\b((the|this|these|above|following|given|provided) {_ALWAYS_SOURCE}"
    rf"|(according to|based on|as (stated|described|mentioned) in) (the|this|these) {_SOMETIMES_SOURCE}"
    rf"|(this|these|the above|the following|the given|the provided) {_SOMETIMES_SOURCE})\b",
    re.IGNORECASE,
)


def refers_to_source(question: str) -> bool:
    """True for questions that do not stand alone ("according to the text, ...")."""
    return bool(_REFERS_TO_SOURCE.search(question))


@dataclass(frozen=True)
class AnswerSpan:
    """The answer a rule chose in a sentence, and the question it fixes."""

    kind: str
    answer: str
    question_words: tuple[str, ...]  # an accepted model question starts with one of these
    template: str  # an in-situ question whose answer is ``answer`` by construction
    alt: str = ""  # a second wording fixed by the rule (another syntax, or a fill-in-the-blank)

    @property
    def category(self) -> str:
        return CATEGORIES[self.kind]


def flatten(sentence: str) -> str:
    """The sentence's last paragraph on one line, without headings, speaker labels, list markers, brackets or
    a final full stop (a sentence split from a chunk can start with the heading above it)."""
    last = _PARAGRAPH.split(sentence.strip())[-1]
    lines = [line for line in last.splitlines() if not line.lstrip().startswith("#")]
    flat = _LEADING_NOISE.sub("", " ".join(" ".join(lines).split())).strip()
    return flat.rstrip(".!;:) ").strip()


def _clause(flat: str, start: int, end: int) -> tuple[str, str]:
    """The text before and after a span, within its clause (no ";" or ":" across, no trailing subclause)."""
    before = re.split(r"[;:]\s*", flat[:start])[-1]
    pieces = re.split(r"(?<=,)\s|\s(?=[—–]\s)", before)
    for i in range(len(pieces) - 1, 0, -1):  # keep the shortest tail of the clause that still names its subject
        tail = " ".join(pieces[i:]).lstrip("—– ")
        if len(content_words(tail)) >= 5:
            before = tail
            break
    after = re.split(r"[;:]|,\s", flat[end:], maxsplit=1)[0]
    return before[:1].upper() + before[1:], after


def _good_subject(subject: str) -> bool:
    words = subject.lower().split()
    if any(mark in subject for mark in ",;:"):  # "Examples of namespaces are: the set ...": not a subject
        return False
    if not words or words[0] in _PRONOUN | _NOT_SUBJECT_START or set(words) & (_MODALS | _COPULAS):
        return False
    return not (len(words) == 1 and words[0].endswith("ly"))  # "Asynchronously changes ...": no subject


def _lower_first(text: str) -> str:
    """Lowercase the first word when it is an ordinary capitalised word ("The", "Its"), not a name."""
    first, _, rest = text.partition(" ")
    if first in {"The", "A", "An", "Its", "This", "These", "Their", "It", "They", "Each", "Every", "All"}:
        return f"{first.lower()} {rest}".strip()
    return text


def _base_verb(verb: str, plural_subject: bool) -> tuple[str, str] | None:
    """(auxiliary, base form) of a known verb: "provides" -> ("does", "provide"), "changed" -> ("did", "change");
    None for any other word (the subject rule then does not apply)."""
    if verb in _IRREGULAR:
        base = _IRREGULAR[verb]
        past = verb in ("had", "made", "ran", "took", "gave", "held", "kept", "sent")
        return ("did" if past else "do" if verb == base and plural_subject else "does"), base
    for ending, aux, cut, add in (("ies", "does", 3, "y"), ("ied", "did", 3, "y"), ("ed", "did", 2, ""),
                                  ("ed", "did", 1, ""), ("es", "does", 2, ""), ("s", "does", 1, "")):  # fmt: skip
        if verb.endswith(ending) and (base := verb[: len(verb) - cut] + add) in _VERB_STEMS:
            return aux, base
    return ("do", verb) if plural_subject and verb in _VERB_STEMS else None


def _number_span(flat: str) -> AnswerSpan | None:
    for match in _NUMBER.finditer(flat):
        num, unit = match.group("num"), (match.group("unit") or "")
        unit_word = unit.split()[0].lower() if unit else ""
        if unit_word in _UNIT_STOP:
            unit, unit_word = "", ""
        start, end = match.start(), match.end() if unit else match.end("num")
        is_year = num.isdigit() and len(num) == 4 and 1000 <= int(num) <= 2100 and not unit
        if is_year:
            words, phrase = ("In what year", "When", "What year"), "what year"
        elif unit_word in ("%", "percent"):
            words, phrase = ("How much", "What percentage", "What share"), "what percentage"
        elif _TIME_UNITS.match(unit_word):
            words, phrase = ("How long", "How many", "How much time"), f"how many {unit}"
        elif unit_word:
            words, phrase = ("How many", "How much", "What number"), f"how many {unit}"
        else:
            continue  # a bare number (a version, a list index) is not a fact worth a question
        before, after = _clause(flat, start, end)
        template = f"{before}{phrase}{after}?"
        answer = flat[start:end].strip()
        return AnswerSpan("number", answer, words, template, _cloze(before, after))
    return None


def _verb_span(flat: str) -> AnswerSpan | None:
    """<Subject of at most 7 words> <known verb> <object>: the object answers "What does <subject> <verb>?"."""
    tokens = flat.split(" ")
    if not tokens or not _SUBJECT_START.match(tokens[0]):
        return None
    for i in range(1, min(len(tokens) - 1, 8)):
        forms = _base_verb(tokens[i], tokens[i - 1].endswith("s"))
        if forms is None or (tokens[i].endswith("ed") and tokens[i + 1] in _PARTICIPLE_NEXT):
            continue  # "The arguments passed to the callback depend on ...": a participle, not the verb
        subject, answer = " ".join(tokens[:i]), " ".join(tokens[i + 1 :])
        bad_object = _AUXILIARY_OBJECT.match(answer) or answer.split()[0].endswith("ly") or not content_words(answer)
        if not _good_subject(subject) or bad_object:
            return None
        aux, base = forms
        template = f"What {aux} {_lower_first(subject)} {base}?"
        return AnswerSpan("verb", _trim(answer), _QUESTION_WORDS["verb"], template, f"{subject} {tokens[i]} what?")
    return None


def _cloze(before: str, after: str) -> str:
    """A fill-in-the-blank wording of an in-situ question."""
    return f"Fill in the blank: {before.rstrip()} ___{after}."


def _specific(answer: str) -> bool:
    """An answer worth asking for: two content words, or a name, code or number (not "more detail")."""
    found = content_words(answer) - _GENERIC_WORDS
    return len(found) >= 2 or (len(found) == 1 and bool(re.search(r"[A-Z`_\d]", answer)))


def _trim(answer: str) -> str:
    """The span up to the first clause break (", which", ";", " — "), when enough is left to answer."""
    cut = re.split(r"[;:]|\s[—–]\s|,\s|\sand\s(?:has|have|is|are|was|were|can|will)\b", answer, maxsplit=1)[0]
    return cut.strip() if len(content_words(cut)) >= 2 or len(cut.split()) >= 4 else answer.strip()


def choose_span(sentence: str) -> AnswerSpan | None:
    """The answer span of ``sentence`` by the rules above, or None when no rule gives a usable one."""
    span = _choose(flatten(sentence))
    if span is None or not span.answer.strip():
        return None
    template = " ".join(span.template.split()).replace(" ?", "?")
    answer = span.answer.strip().rstrip("?!.,;:").strip()
    alt = " ".join(span.alt.split())
    return AnswerSpan(
        span.kind, answer, span.question_words, template[:1].upper() + template[1:], alt[:1].upper() + alt[1:]
    )


def _choose(flat: str) -> AnswerSpan | None:
    if len(content_words(flat)) < 4:
        return None
    if (m := _TO_GOAL.match(flat)) or (m := _IMPERATIVE.match(flat)):
        alt = f"What should you do to {m['goal']}?"
        return AnswerSpan("procedure", _trim(m["answer"]), ("How",), f"How do you {m['goal']}?", alt)
    if (m := _REASON.match(flat)) and len(content_words(m["main"])) >= 2:
        main = m["main"]
        if re.match(rf"(?:{IMPERATIVES})\b", main):  # "Keep X away from Y, because ..."
            template = f"Why should you {main[:1].lower()}{main[1:]}?"
            alt = f"For what reason should you {main[:1].lower()}{main[1:]}?"
        else:
            template = f"What is the reason that {_lower_first(main)}?"
            alt = f"{main}: why?"
        return AnswerSpan("reason", _trim(m["answer"]), ("Why",), template, alt)
    if span := _number_span(flat):
        return span
    if (m := _NAME.search(flat)) and content_words(m["answer"]):
        before, after = _clause(flat, m.start("answer"), m.end("answer"))
        template = f"{before}what{after}?"
        return AnswerSpan("name", m["answer"].strip(), _QUESTION_WORDS["name"], template, _cloze(before, after))
    if (m := _USE.match(flat)) and content_words(m["answer"]) and _good_subject(m["answer"]):
        goal = re.split(r"[;:]", m["goal"])[0].strip()
        template = f"What {m['verb']} used {m['prep']} {goal}?"
        alt = _cloze("", f" {m['verb']} used {m['prep']} {goal}")
        return AnswerSpan("use", m["answer"], _QUESTION_WORDS["use"], template, alt)
    if (m := _DEFINITION.match(flat)) and _good_subject(m["subj"]):
        subj = _lower_first(m["subj"])
        return AnswerSpan(
            "definition", _trim(m["answer"]), ("What",), f"What {m['cop']} {subj}?", f"{subj} {m['cop']} what?"
        )
    if (m := _PASSIVE.match(flat)) and _good_subject(m["subj"]):
        subj, tail = _lower_first(m["subj"]), f"{m['cop']} {_lower_first(m['subj'])} {m['part']}"
        if m["prep"] == "by":
            words = ("By what", "By whom", "Who", "What", "How")
            return AnswerSpan(
                "passive", _trim(m["answer"]), words, f"By what {tail}?", f"{subj} {m['cop']} {m['part']} by what?"
            )
        word = "When" if m["prep"] == "when" else f"{m['prep'].capitalize()} what"
        alt = f"{subj} {m['cop']} {m['part']} " + ("when?" if m["prep"] == "when" else f"{m['prep']} what?")
        return AnswerSpan("passive", _trim(m["answer"]), (word, "When", "At what point"), f"{word} {tail}?", alt)
    if span := _verb_span(flat):
        return span
    if (m := _PREPOSITION.search(flat)) and _specific(m["answer"]) and len(m["answer"].split()) <= 6:
        before, _ = _clause(flat, m.start("answer"), m.end("answer"))
        if len(content_words(before)) >= 3:
            template = f"{before.rstrip()} what?"
            return AnswerSpan("object", m["answer"].strip(), _QUESTION_WORDS["object"], template, _cloze(before, ""))
    return None


def derive_criteria(span: AnswerSpan, question: str) -> str:
    """What a grader must see, from the span alone: its key words (those the question lacks)."""
    q_words = content_words(question)
    key = [w for w in re.findall(r"[\w.'’%-]+", span.answer) if content_words(w) - q_words or re.search(r"\d", w)]
    must = f"Must state: {span.answer}."
    if key:
        must += f" Key terms: {', '.join(dict.fromkeys(key))}. Other wording with the same meaning is correct."
    return must


def span_difficulty(span: AnswerSpan, question: str, sentence: str, n_chunks: int = 1) -> int:
    """The written difficulty rule (module docstring): base by kind, + long answer, + reworded, + multi-chunk."""
    level = BASE_DIFFICULTY[span.kind]
    if len(content_words(span.answer)) > 5:
        level += 1
    q_words = content_words(question)
    if q_words and len(q_words & content_words(sentence)) / len(q_words) < 0.5:
        level += 1
    if n_chunks > 1:
        level += 2
    return min(level, 10)
