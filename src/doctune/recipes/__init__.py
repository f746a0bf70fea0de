"""Recipes, found by name: built-ins, ``doctune.recipes`` entry points, and ``recipes:`` in the config.

``get_recipe(name, config)`` returns an instance; ``recipe_names(config)`` lists what is available. Nothing is
imported until a recipe is asked for (a recipe module may pull heavy dependencies).
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from doctune.config import ConfigError
from doctune.recipes.base import GateSpec, Recipe, RecipeOutput, SideArtifact

if TYPE_CHECKING:
    from doctune.config import DoctuneConfig

log = logging.getLogger(__name__)

#: built-in recipe name -> "module:Class"
BUILTIN: dict[str, str] = {
    "qa": "doctune.recipes.qa:QARecipe",
    "multihop": "doctune.recipes.qa:MultihopRecipe",
    "rephrase": "doctune.recipes.qa:RephraseRecipe",
    "character": "doctune.recipes.character:CharacterRecipe",
    "replies": "doctune.recipes.replies:RepliesRecipe",
    "likes": "doctune.recipes.likes:LikesRecipe",
    "voice": "doctune.recipes.voice:VoiceRecipe",
    "kg": "doctune.recipes.kg:KGRecipe",
    "wiki": "doctune.recipes.wiki:WikiRecipe",
    "mindmap": "doctune.recipes.mindmap:MindmapRecipe",
    "dialogue": "doctune.recipes.dialogue:DialogueRecipe",
    "code": "doctune.recipes.code:CodeRecipe",
}
ENTRY_POINT_GROUP = "doctune.recipes"


class UnknownRecipe(ConfigError):
    """No recipe of that name; the message lists the known ones."""


def _load(target: str) -> type[Recipe]:
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UnknownRecipe(f"cannot import recipe {target!r}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Recipe)):
        raise UnknownRecipe(f"{target!r} is not a doctune.recipes.Recipe subclass")
    return cls


def _configured(config: DoctuneConfig | None) -> dict[str, str]:
    """name -> target of the recipes given as "module:Class" in ``config.recipes`` (by their attribute ``name``)."""
    out = {}
    for target in config.recipes if config is not None else []:
        if ":" in target:
            out[_load(target).name] = target
    return out


def available(config: DoctuneConfig | None = None) -> dict[str, str]:
    """Every recipe name -> where it comes from (module:Class)."""
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    found.update(_configured(config))
    return found


def recipe_names(config: DoctuneConfig | None = None) -> list[str]:
    return sorted(available(config))


def get_recipe(name: str, config: DoctuneConfig | None = None) -> Recipe:
    """The recipe called ``name``."""
    targets = available(config)
    if name not in targets:
        raise UnknownRecipe(f"unknown recipe {name!r}; known: {', '.join(sorted(targets))}")
    return _load(targets[name])()


def dataset_recipe(name: str, config: DoctuneConfig | None = None) -> Recipe:
    """The recipe whose ``dataset_<name>`` holds the curated examples of recipe ``name`` (itself, or for the QA
    family ``qa``): export, train and eval of ``name`` work on that recipe's dataset and models."""
    recipe = get_recipe(name, config)
    return recipe if recipe.dataset_owner == recipe.name else get_recipe(recipe.dataset_owner, config)


__all__ = [
    "GateSpec",
    "Recipe",
    "RecipeOutput",
    "SideArtifact",
    "UnknownRecipe",
    "available",
    "configured_recipes",
    "dataset_recipe",
    "get_recipe",
    "recipe_names",
]


def configured_recipes(config: DoctuneConfig) -> list[str]:
    """The names of the recipes ``config.recipes`` asks `doctune run` for, in order (checked: unknown ones fail)."""
    names = []
    for entry in config.recipes:
        name = _load(entry).name if ":" in entry else entry
        get_recipe(name, config)
        names.append(name)
    return names
