"""The plans of brainstorming dialogues and the template phrasings of their turns (:mod:`doctune.knowledge.dialogue`)."""

from __future__ import annotations

#: the plans: (step, role, what the role does in it); roles are cast by :func:`cast_personas`
PLANS: dict[str, list[tuple[str, str, str]]] = {
    "brainstorm": [("pitch", "assistant", "states fact 1 as a starting idea"),
                   ("questions", "novice", "asks a simple question that fact 2 answers"),
                   ("answer", "assistant", "answers with fact 2"),
                   ("critique", "sceptic", "asks where the document supports this, and what about fact 3"),
                   ("revision", "assistant", "restates the idea with fact 3 and lists every claim")],
    "debate": [("claim", "assistant", "states fact 1 as a claim"), ("counter", "sceptic", "challenges it with fact 2"),
               ("reply", "assistant", "reconciles fact 2 with fact 1, citing both"),
               ("closing", "novice", "asks a question that fact 3 answers"),
               ("closing", "assistant", "answers with fact 3")],
}  # fmt: skip
PHRASES = {
    "pitch": ("Here is an idea to start from, in {title}: {fact}", "Let me open with a point from {title}. {fact}",
              "A good starting point: {fact}"),
    "answer": ("{answer}. In the document's words: {fact}", "In short: {answer}. The document says: {fact}",
               "{answer}. Here is the passage: {fact}"),
    "critique": ("Where does the document actually support that?{more}", "I am not convinced yet. Which passage "
                 "says so?{more}", "That sounds plausible, but is it in the text?{more}"),
    "revision": ("Fair point. Here is the idea again, with its sources. {fact}",
                 "Let me revise it and stick to the text. {fact}",
                 "Good challenge. Restated from the document: {fact}"),
    "ask": ("What else does the document say about {about}?", "Can you tell me more about {about}?",
            "What does the text say next about {about}?"),
    "claim": ("My claim, straight from {title}: {fact}", "I would argue this, from {title}: {fact}"),
    "counter": ("But the document also says: {fact} Does that not change the picture?",
                "Not so fast. The text also says: {fact} How does that fit?"),
    "reply": ("Both hold, and they fit together. {first} And the document also says: {fact}",
              "There is no conflict. {first} At the same time: {fact}"),
}  # fmt: skip
