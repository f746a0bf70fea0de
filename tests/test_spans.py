"""The span recipe's written rules: which span answers, the question word, the template, category, difficulty."""

from __future__ import annotations

import pytest

from doctune.generate.span_items import EXAMPLE, PlannedItem, SpanItemWriter, plan_chunk, question_problem
from doctune.generate.spans import CATEGORIES, choose_span, derive_criteria, span_difficulty
from doctune.grounding import DeterministicVerifier
from doctune.llm import CallParams, LLMClient
from doctune.llm.fake import FakeBackend
from doctune.records import Chunk

RULES = [
    # sentence, kind, answer, template, first accepted question word
    (
        "To mount the controller, drill two holes 120 millimetres apart and use the supplied screws.",
        "procedure",
        "drill two holes 120 millimetres apart and use the supplied screws",
        "How do you mount the controller?",
        "How",
    ),
    (
        "Hold the RESET button for 10 seconds to restore the factory settings.",
        "procedure",
        "Hold the RESET button for 10 seconds",
        "How do you restore the factory settings?",
        "How",
    ),
    (
        "Keep the controller at least 2 metres away from pool pumps, because their motors cause electrical noise.",
        "reason",
        "because their motors cause electrical noise",
        "Why should you keep the controller at least 2 metres away from pool pumps?",
        "Why",
    ),
    (
        "A single controller drives up to 8 valves, and two controllers can be linked for larger gardens.",
        "number",
        "up to 8 valves",
        "A single controller drives how many valves?",
        "How many",
    ),
    ("The warranty lasts 2 years from the date of purchase.", "number", "2 years", None, "How long"),
    ("It holds 99.86 percent of the system's mass.", "number", "99.86 percent", None, "How much"),
    (
        "Module objects have a secret read-only attribute called `__dict__`.",
        "name",
        "`__dict__`",
        "Module objects have a secret read-only attribute called what?",
        "What",
    ),
    (
        "The `global` statement can be used to indicate that particular variables live in the global scope.",
        "use",
        "The `global` statement",
        "What can be used to indicate that particular variables live in the global scope?",
        "What",
    ),
    (
        "The AquaFlow V8 is a wall-mounted controller for garden irrigation.",
        "definition",
        "a wall-mounted controller for garden irrigation",
        "What is the AquaFlow V8?",
        "What",
    ),
    (
        "The global namespace for a module is created when the module definition is read in.",
        "passive",
        "when the module definition is read in",
        "When is the global namespace for a module created?",
        "When",
    ),
    (
        "The fuse protects the transformer from short circuits.",
        "verb",
        "the transformer from short circuits",
        "What does the fuse protect?",
        "What",
    ),
    (
        "Barges carry heavy cargo cheaply along navigable rivers.",
        "verb",
        "heavy cargo cheaply along navigable rivers",
        "What do Barges carry?",
        "What",
    ),
    (
        "Saturn is famous worldwide for its bright rings of frozen ice.",
        "object",
        "frozen ice",  # the last prepositional phrase
        "Saturn is famous worldwide for its bright rings of what?",
        "What",
    ),
]


@pytest.mark.parametrize(("sentence", "kind", "answer", "template", "word"), RULES)
def test_each_rule_picks_the_span_that_answers(sentence, kind, answer, template, word):
    span = choose_span(sentence)
    assert span is not None and span.kind == kind
    assert span.answer == answer and answer in sentence  # the answer is the source's own words
    if template:
        assert span.template == template
    assert span.question_words[0] == word
    assert span.category == CATEGORIES[kind]
    verifier = DeterministicVerifier()
    for question in (span.template, span.alt):  # both wordings are right by construction
        assert question and answer not in question
        assert verifier.verify(question, span.answer, [sentence]).grounded, question


@pytest.mark.parametrize(
    "sentence",
    [
        "It was about to speak, when the cock crew.",  # pronoun subject, nothing to ask
        "See the POSIX chmod(2) documentation for more detail.",  # a generic answer is not a fact
        "- version: v10.0.0",  # a version is not a quantity
        "Firmware updates install automatically at 3 am.",  # an adverb is not an object
    ],
)
def test_sentences_without_a_usable_span_give_none(sentence):
    assert choose_span(sentence) is None


def test_an_adverb_or_conjunction_is_not_a_subject():
    for sentence in (
        "Then let not winter's ragged hand deface in thee thy summer.",
        "Indeed most of the system supplies tools.",
    ):
        span = choose_span(sentence)
        assert span is None or span.kind != "verb", span


def test_difficulty_follows_the_written_rule():
    number = choose_span("The rain delay pauses all watering for 48 hours.")
    reason = choose_span("Place the router in a central, raised position, because walls and floors weaken the signal.")
    long_answer = choose_span(
        "The package contains the router, a 12-volt power adapter, one Ethernet cable and a card."
    )
    assert span_difficulty(number, number.template, "The rain delay pauses all watering for 48 hours.") == 1
    sentence = "Place the router in a central, raised position, because walls and floors weaken the signal."
    assert span_difficulty(reason, reason.template, sentence) == 4
    # +1 for a reworded question (under half its content words in the sentence), +2 for several chunks
    assert span_difficulty(reason, "Why do signals fade indoors near floors?", sentence, n_chunks=2) == 7
    assert span_difficulty(long_answer, long_answer.template, "The package contains ...") == 3  # verb 2, +1 long


def test_criteria_come_from_the_span():
    span = choose_span("The transformer supplies 24 volts AC to the valves.")
    criteria = derive_criteria(span, span.template)
    assert "24 volts" in criteria and "24" in criteria.split("Key terms:")[1]


def test_model_questions_are_checked_against_the_span():
    sentence = "The router shuts down when its temperature exceeds 70 degrees Celsius."
    span = choose_span(sentence)
    verifier = DeterministicVerifier()
    good = "How many degrees Celsius must the router's temperature exceed before it shuts down?"
    assert question_problem(good, span, sentence, verifier) is None
    assert question_problem("How many?", span, sentence, verifier) == "not one question"
    assert question_problem("Why does the router shut down at 70 degrees Celsius?", span, sentence) is not None
    assert (
        question_problem("How many routers shut down at 70 degrees Celsius?", span, sentence) == "gives the answer away"
    )
    hallucinated = "How many degrees Celsius does the router shut down at when its temperature exceeds 10?"
    assert question_problem(hallucinated, span, sentence) == "states a number the source lacks"
    assert question_problem("How many weeks does the router last?", span, sentence) == "asks about something else"
    assert question_problem(EXAMPLE["question"], span, sentence) is not None


def _writer(*replies: str) -> SpanItemWriter:
    backend = FakeBackend().add_replies(*replies)
    return SpanItemWriter(LLMClient(backend), CallParams(max_tokens=48), attempts=2)


def test_a_good_model_question_is_kept_and_the_template_becomes_the_other_wording():
    chunk = Chunk(
        chunk_id="c1", doc_id="d1", index=0, text="The warranty lasts 2 years from the date of purchase.",
        char_start=0, char_end=54, n_chars=54,
    )  # fmt: skip
    items, refusals = _writer("How long does the warranty last from the date of purchase?").raw_items(chunk, 3)
    assert refusals == [] and len(items) == 1
    item = items[0]
    assert item["question_source"] == "model" and item["question"].startswith("How long")
    assert item["alt_question"] == "The warranty lasts how many years from the date of purchase?"
    assert item["answer"] == "2 years" and item["citations"] == [chunk.text.rstrip()]
    assert item["category"] == "factual" and item["difficulty"] == 1


def test_a_bad_model_question_falls_back_to_the_template_after_the_retries():
    chunk = Chunk(
        chunk_id="c1", doc_id="d1", index=0, text="The fuse protects the transformer from short circuits.",
        char_start=0, char_end=55, n_chars=55,
    )  # fmt: skip
    writer = _writer("What is a fuse?", "Why do bees dance?")
    items, refusals = writer.raw_items(chunk, 3)
    assert items[0]["question"] == "What does the fuse protect?" and items[0]["question_source"] == "template"
    assert items[0]["alt_question"] == "The fuse protects what?"
    assert refusals and writer.client.usage.calls == 2  # greedy, then one sampled retry


def test_plan_prefers_new_kinds_and_keeps_source_order():
    text = (
        "The rain delay pauses all watering for 48 hours. Each valve can run up to 4 times per day. "
        "The fuse protects the transformer from short circuits. Hold the RESET button for 10 seconds to restore "
        "the factory settings."
    )
    chunk = Chunk(chunk_id="c", doc_id="d", index=0, text=text, char_start=0, char_end=len(text), n_chars=len(text))
    plan = plan_chunk(chunk, 3)
    assert [p.span.kind for p in plan].count("number") == 1  # a second number waits for other kinds
    assert [text.index(p.cited) for p in plan] == sorted(text.index(p.cited) for p in plan)
    assert all(isinstance(p, PlannedItem) and p.cited in text for p in plan)
