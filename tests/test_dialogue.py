"""Brainstorming dialogues (``doctune generate dialogue``): fact plans, both plans of the span strategy, the model's
question checked, one_call replies checked claim by claim, chat examples, metrics, and the recipe end to end."""

from __future__ import annotations

import json
import re
from itertools import pairwise

import pytest

from doctune.config_knowledge import DialogueConfig
from doctune.knowledge.dialogue import Claim, Dialogue, Turn, build_dialogues, cast_personas, flat, plan_facts
from doctune.knowledge.dialogue_metrics import persona_distinctness, turns_per_dialogue, verified_claim_share
from doctune.llm.client import LLMClient
from doctune.llm.fake import FakeBackend
from doctune.llm.roles import open_client
from doctune.recipes.dialogue import DialogueRecipe, dialogue_messages
from doctune.records import Chunk, Document, Example
from doctune.stages import generate

from genutil import build_workspace

GOOD_DANUBE = "How many capital cities does the Danube pass through?"
GIVEAWAY_LIGHT = "How long, about eight minutes, does its light take to reach the Earth?"


def _questions(messages) -> str:
    """A small model rewording the span's draft question: one good rewording, one that gives the answer away."""
    draft = re.search(r"Draft question: (.*)", messages[-1].content).group(1)
    if "Danube" in draft:
        return GOOD_DANUBE
    if "light takes" in draft:
        return GIVEAWAY_LIGHT
    return "What is this?"


def _facts(messages) -> list[str]:
    return re.findall(r'^\d+\. "(.*)"$', messages[-1].content, flags=re.MULTILINE)


def _turn(speaker, step, text, claims=()):
    return {"speaker": speaker, "step": step, "text": text, "claims": [{"claim": c, "quote": q} for c, q in claims]}


def _one_call(messages, short: bool = False) -> str:
    """A one_call reply: good turns, one turn whose quote is not in the document, and (``short``) one whose claim
    is not what its quote says."""
    f = _facts(messages)
    last = f[min(2, len(f) - 1)]
    turns = [
        _turn("expert", "pitch", f"To start: {f[0]}", [(f[0], f[0])]),
        _turn("novice", "questions", "What else does it say?"),
        _turn(
            "sceptic",
            "critique",
            "Pluto is a planet too.",
            [("Pluto is the ninth planet.", "Pluto is the ninth planet.")],
        ),
        _turn("expert", "answer", f"It also says: {f[1]}", [(f[1], f[1])]),
    ]
    claim = "Mars has two small moons called Phobos and Deimos." if short else last
    turns.append(_turn("expert", "revision", f"So: {claim}", [(claim, last)]))
    return json.dumps({"turns": turns})


FakeBackend.register_script("dlg-questions", _questions)
FakeBackend.register_script("dlg-questions-added", lambda m: GOOD_DANUBE.replace("the Danube", "the mighty Danube"))
FakeBackend.register_script("dlg-one-call", _one_call)
FakeBackend.register_script("dlg-one-call-short", lambda m: _one_call(m, short=True))


def _setup(tmp_path, model: str, **dialogue):
    config, ws = build_workspace(
        tmp_path,
        {"models.generator": {"backend": "fake", "model": model, "max_concurrency": 2}, "dialogue": dialogue},
    )
    docs = ws.read_rows("documents", Document, config)
    chunks = ws.read_rows("chunks", Chunk, config)
    return config, ws, docs, chunks


def _run(tmp_path, model: str, strategy: str, **dialogue):
    config, ws, docs, chunks = _setup(tmp_path, model, **dialogue)
    client = open_client(config, ws, "generator")
    dialogues, errors = build_dialogues(docs, chunks, config.dialogue, strategy, client, progress=False)
    return config, docs, dialogues, errors


def _assert_claims_are_source_spans(dialogues, docs):
    text = {d.doc_id: d.text for d in docs}
    claims = [c for d in dialogues for t in d.turns for c in t.claims]
    assert claims
    for claim in claims:
        cit = claim.citation
        assert claim.verified and cit is not None and cit.method in ("exact", "normalized")
        assert text[cit.doc_id][cit.char_start : cit.char_end] == cit.quote
        assert flat(cit.quote) == claim.text


def test_plan_facts_distinct_citable_spread_and_filtered(tmp_path):
    config, _, docs, chunks = _setup(tmp_path, "dlg-questions")
    solar, rivers = docs
    groups = plan_facts(solar, chunks, config.dialogue)
    assert len(groups) == 2 and all(len(g) == 3 for g in groups)
    sentences = [s for g in groups for s, _ in g]
    assert len(set(sentences)) == 6
    starts = [solar.text.index(s) for s in sentences]
    assert starts == sorted(starts)  # document order, the first dialogue on the first part of the document
    assert {c.chunk_id for _, c in groups[0]} != {c.chunk_id for _, c in groups[-1]}
    for sentence, chunk in groups[0]:
        assert sentence in chunk.text and not sentence.startswith("#")
    topical = plan_facts(solar, chunks, DialogueConfig(topics=["Neptune"], dialogues_per_document=1))
    assert any("Neptune" in s for s, _ in topical[0])
    assert plan_facts(rivers, chunks, DialogueConfig(documents=["solar"])) == []


def test_brainstorm_steps_personas_and_verified_source_claims(tmp_path):
    _, docs, dialogues, errors = _run(tmp_path, "dlg-questions", "span")
    assert errors == [] and len(dialogues) == 3
    for d in dialogues:
        assert [t.step for t in d.turns] == ["pitch", "questions", "answer", "critique", "revision"]
        assert [t.speaker for t in d.turns] == ["expert", "novice", "expert", "sceptic", "expert"]
        assert d.turns[1].text.endswith("?") and not d.turns[1].claims and not d.turns[3].claims
        assert len(d.turns[4].claims) == 3  # the revision lists every claim
    _assert_claims_are_source_spans(dialogues, docs)
    assert verified_claim_share(dialogues) == 1.0


def test_debate_steps_and_personas(tmp_path):
    _, docs, dialogues, errors = _run(tmp_path, "dlg-questions", "span", plan="debate", facts_per_dialogue=4)
    assert errors == [] and dialogues
    for d in dialogues:
        assert [t.step for t in d.turns] == ["claim", "counter", "reply", "closing", "closing", "closing", "closing"]
        assert [t.speaker for t in d.turns] == ["expert", "sceptic", "expert", "novice", "expert", "novice", "expert"]
        assert d.turns[1].claims[0].text in d.turns[2].text and d.turns[0].claims[0].text in d.turns[2].text
    _assert_claims_are_source_spans(dialogues, docs)


def test_missing_personas_are_cast_from_the_others_in_order():
    cfg = DialogueConfig(personas={"teacher": "t", "critic": "c", "student": "s"}, assistant_persona="teacher")
    assert cast_personas(cfg) == {"assistant": "teacher", "novice": "critic", "sceptic": "student"}
    cfg = DialogueConfig(personas={"expert": "e", "sceptic": "s", "pupil": "p"})
    assert cast_personas(cfg) == {"assistant": "expert", "novice": "pupil", "sceptic": "sceptic"}
    assert cast_personas(DialogueConfig(personas={"expert": "e"}))["novice"] == "novice"


def test_model_question_kept_only_when_it_passes_its_check(tmp_path):
    _, _, dialogues, _ = _run(tmp_path, "dlg-questions", "span")
    questions = {t.text: t for d in dialogues for t in d.turns if t.step == "questions"}
    assert questions[GOOD_DANUBE].method == "model"
    light = next(t for t in questions.values() if "light" in t.text)
    assert light.method == "template" and light.text != GIVEAWAY_LIGHT and "gives the answer away" in light.reason
    assert "eight" not in light.text
    # passes question_problem, but brings a word the source lacks: the template instead
    _, _, dialogues, _ = _run(tmp_path / "added", "dlg-questions-added", "span")
    danube = next(t for d in dialogues for t in d.turns if t.step == "questions" and "Danube" in t.text)
    assert danube.method == "template" and "mighty" in danube.reason and "mighty" not in danube.text


def test_one_call_removes_unverified_turns_and_rejects_short_dialogues(tmp_path):
    _, docs, dialogues, errors = _run(tmp_path / "a", "dlg-one-call", "one_call")
    assert errors == [] and len(dialogues) == 3
    for d in dialogues:
        assert [t.step for t in d.turns] == ["pitch", "questions", "answer", "revision"]
        assert [t.reason for t in d.removed_turns] == ["unverified claim (quote not in the document)"]
    _assert_claims_are_source_spans(dialogues, docs)
    removed = [t for d in dialogues for t in d.removed_turns]
    assert verified_claim_share(dialogues) == 1.0 and verified_claim_share(dialogues, removed) == 0.75

    _, _, dialogues, errors = _run(tmp_path / "b", "dlg-one-call-short", "one_call")
    assert dialogues == [] and len(errors) == 3
    assert all(e["reason"].startswith("too few turns (3 left, 2 removed)") for e in errors)
    assert errors[0]["claims"] == "4" and errors[0]["verified_claims"] == "2"

    config, _, docs, chunks = _setup(tmp_path / "c", "none")
    client = LLMClient(FakeBackend().add_replies(*["no JSON here"] * 20))
    dialogues, errors = build_dialogues(docs, chunks, config.dialogue, "one_call", client, progress=False)
    assert dialogues == [] and {e["reason"] for e in errors} == {"invalid"}


def test_examples_alternate_and_train_the_assistant_persona(tmp_path):
    config, _, dialogues, _ = _run(tmp_path, "dlg-questions", "span")
    recipe = DialogueRecipe()
    for d in dialogues:
        ex = recipe.dialogue_example(d, config.dialogue)
        roles = [m.role for m in ex.messages]
        assert roles[0] == "system" and roles[-1] == "assistant" and roles[1] == "user"
        assert all(a != b for a, b in pairwise(roles[1:]))
        assert ex.messages[1].content == f"Let us discuss {d.title}."  # the expert opens: a user opener first
        said = [m.content for m in ex.messages if m.role == "assistant"]
        assert said == [t.text for t in d.turns if t.speaker == "expert"]
        assert ex.messages[2 + 1].content.startswith("Novice: ")
        assert ex.field_values()["verified_claims"] == ex.field_values()["n_claims"] == 5
    turns = [Turn(s, "x", f"{s} says {i}", []) for i, s in enumerate(["novice", "sceptic", "expert", "sceptic"])]
    messages = dialogue_messages(Dialogue("d", "doc", "T", "debate", "", turns), DialogueConfig())
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[1]["content"] == "Novice: novice says 0\n\nSceptic: sceptic says 1"
    assert messages[0]["content"].startswith("You are the expert (knows the document well")
    as_novice = dialogue_messages(
        Dialogue("d", "doc", "T", "debate", "", turns), DialogueConfig(assistant_persona="novice")
    )
    assert [m["role"] for m in as_novice] == ["system", "user", "assistant"]


def _persona_dialogue(expert: list[str], novice: list[str]) -> Dialogue:
    turns = [Turn("expert", "answer", t, []) for t in expert] + [Turn("novice", "questions", t, []) for t in novice]
    return Dialogue("d", "doc", "T", "brainstorm", "", turns)


def test_persona_distinctness_against_chance():
    topics = ["rivers", "planets", "classes", "vectors", "moons", "dams", "methods", "factors", "stars", "lists"]
    expert = [
        f"The document states that {t} are described in section {i}, as the passage shows."
        for i, t in enumerate(topics)
    ]
    novice = [f"Could you explain {t} to me simply? I am new here." for t in topics]
    distinct = persona_distinctness([_persona_dialogue(expert, novice)])
    assert distinct["chance"] == 0.5 and distinct["accuracy"] > 0.9 and distinct["folds"] == 5
    same = persona_distinctness([_persona_dialogue(["Hello there."] * 10, ["Hello there."] * 10)])
    assert same["accuracy"] == pytest.approx(same["chance"], abs=0.15)
    alone = persona_distinctness([_persona_dialogue(expert, [])])
    assert alone["accuracy"] is None and "nothing to tell apart" in alone["reason"]
    assert turns_per_dialogue([_persona_dialogue(expert, novice), _persona_dialogue(expert[:2], [])]) == {
        "mean": 11.0,
        "min": 2,
        "max": 20,
    }
    claims = [Claim("a", None, True), Claim("b", None, False)]
    assert verified_claim_share([Dialogue("d", "x", "T", "debate", "", [Turn("e", "s", "t", claims)])]) == 0.5


@pytest.mark.parametrize(("model", "strategy"), [("dlg-questions", "span"), ("dlg-one-call", "auto")])
def test_recipe_end_to_end(tmp_path, model, strategy):
    config, ws = build_workspace(
        tmp_path,
        {"models.generator": {"backend": "fake", "model": model, "max_concurrency": 2}, "generate.strategy": strategy},
    )
    result = generate.run(config, ws, "dialogue", progress=False)
    examples = ws.read_rows("examples_dialogue", Example, config)
    assert result.counts["examples"] == len(examples) == 3
    assert {e.group for e in examples} == {"doc0", "doc1"}
    assert all(e.messages[-1].role == "assistant" for e in examples)
    stats = result.stats
    assert stats["strategy"] == ("span" if strategy == "span" else "one_call")
    assert stats["dialogues"] == 3 and stats["rejected"] == 0 and stats["verified_claim_share"] == 1.0
    assert stats["by_plan"] == {"brainstorm": 3} and stats["turns_per_dialogue"]["min"] >= 4
    assert stats["persona_distinctness"]["n"] > 0 and json.loads(json.dumps(stats))
    if strategy != "span":
        assert stats["removed_turns"] == 3 and stats["verified_claim_share_all"] < 1.0
    page = (tmp_path / "dialogues" / "dialogues.md").read_text()
    assert page.startswith("# Dialogues") and "**Expert** (pitch)" in page and "quote (doc0-" in page
