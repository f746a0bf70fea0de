"""The JSON objects the generator is asked for, built per request so the schema carries the
configured categories, the item cap and (in ``sentence`` citation mode) the chunk's own sentences.

The root is always an object ``{"items": [...]}``, as OpenAI's json_schema mode requires.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

# an enum rather than minimum/maximum: grammar converters (llama.cpp) enforce enums, not integer bounds
DIFFICULTY = Literal[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]


class ItemBase(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RephrasedItem(BaseModel):
    """A reworded question and answer with the same meaning."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=5)
    answer: str = Field(min_length=1)


def _item_fields(categories: list[str], include_reasoning: bool) -> dict[str, Any]:
    category_type: Any = Literal[tuple(categories)]  # type: ignore[valid-type]
    fields: dict[str, Any] = {}
    if include_reasoning:
        fields["reasoning"] = (
            str,
            Field(max_length=600, description="Why this question matters; never shown to the student."),
        )
    fields.update(
        question=(
            str,
            Field(min_length=5, max_length=300, description="A question that names its subject and stands alone."),
        ),
        answer=(
            str,
            Field(min_length=1, max_length=600, description="The correct answer, supported by the citations."),
        ),
        evaluation_criteria=(
            str,
            Field(
                min_length=5,
                max_length=500,
                description="What a grader must see in a correct answer; allow every correct path.",
            ),
        ),
        difficulty=(DIFFICULTY, Field(description="1 = trivial lookup, 10 = expert synthesis.")),
        category=(category_type, Field(description="One of the allowed categories.")),
    )
    return fields


@cache
def single_item_model(categories: tuple[str, ...], include_reasoning: bool = False) -> type[BaseModel]:
    """One item without citations: the reply of a cite-first request, whose citations doctune chose."""
    return create_model("CitedItem", __base__=ItemBase, **_item_fields(list(categories), include_reasoning))


@lru_cache(maxsize=256)
def item_reply_model(
    categories: tuple[str, ...],
    max_items: int,
    include_reasoning: bool = False,
    sentences: tuple[str, ...] | None = None,
    min_items: int = 0,
) -> type[BaseModel]:
    """A pydantic model of the reply ``{"items": [item, ...]}`` (at most ``max_items``, possibly none).

    With ``sentences``, each citation must be one of them (an enum), so a schema-enforcing backend can
    only cite verbatim text.
    """
    citation_type: Any = Literal[tuple(sentences)] if sentences else Annotated[str, Field(max_length=400)]
    fields = _item_fields(list(categories), include_reasoning)
    fields["citations"] = (
        list[citation_type],
        Field(min_length=1, max_length=4, description="Verbatim quotes from the text that support the answer."),
    )
    item = create_model("GeneratedItem", __base__=ItemBase, **fields)
    return create_model(
        "GeneratedItems",
        __base__=ItemBase,
        items=(
            list[item],
            Field(
                min_length=min(min_items, max_items),
                max_length=max_items,
                description="As many items as the text deserves" + ("." if min_items else "; may be empty."),
            ),
        ),
    )
