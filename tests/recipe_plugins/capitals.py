"""A recipe that lives outside doctune: "write this sentence of the source in capitals".

Configured with ``recipes: ["recipe_plugins.capitals:CapitalsRecipe"]`` (this folder is on the test path), it
runs ``generate -> curate examples -> export -> train -> eval`` through the generic stages; nothing in doctune
names it. Its answer is right by construction (``str.upper`` of a source sentence) and checked the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from doctune.chunking.sentences import split_sentences
from doctune.recipes import GateSpec, Recipe, RecipeOutput
from doctune.records import Chunk, Example


class CapitalsFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sentence: str
    chunk_id: str


class CapitalsRecipe(Recipe):
    name = "capitals"
    description = "Each source sentence, to be written back in capitals."
    inputs = ("chunks",)
    fields_model = CapitalsFields
    metrics = ("perplexity", "exact_match")
    gate = GateSpec(metric="perplexity", split="eval", higher_is_better=False)

    def build_examples(self, config, workspace, options: Mapping[str, Any], progress: bool = True) -> RecipeOutput:
        examples, errors = [], []
        for chunk in workspace.read_rows("chunks", Chunk, config):
            for sentence in split_sentences(chunk.text):
                sentence = " ".join(sentence.split())
                if len(sentence.split()) < 4:
                    errors.append({"unit_id": chunk.chunk_id, "reason": f"too short: {sentence!r}"})
                    continue
                messages = [
                    {"role": "user", "content": f"Write in capitals: {sentence}"},
                    {"role": "assistant", "content": sentence.upper()},
                ]
                fields = CapitalsFields(sentence=sentence, chunk_id=chunk.chunk_id)
                # group by sentence: a sentence is in one split only
                examples.append(self.example(chunk.chunk_id, sentence, messages, fields, [chunk.doc_id]))
        return RecipeOutput(examples, errors, {"sentences": len(examples)})

    def check(self, example: Example) -> list[str]:
        failed = super().check(example)
        if example.target != example.field_values()["sentence"].upper():
            failed.append("not_the_capitals")
        return failed

    def score_reply(self, example: Example, reply: str) -> dict[str, float]:
        return {"exact_match": float(reply.strip() == example.target)}
