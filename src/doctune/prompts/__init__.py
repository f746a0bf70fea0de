"""Prompts are ``.md`` package data, rendered with ``string.Template`` (``$name`` placeholders),
so JSON braces in a prompt need no escaping."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from string import Template


@cache
def load_prompt(name: str) -> str:
    """The text of ``prompts/<name>.md``."""
    resource = files("doctune.prompts").joinpath(f"{name}.md")
    if not resource.is_file():
        raise FileNotFoundError(f"no prompt named {name!r} in doctune/prompts")
    return resource.read_text(encoding="utf-8").strip()


def render_prompt(name: str, **values: object) -> str:
    """Fill a prompt's ``$placeholders``; a missing value is an error."""
    return Template(load_prompt(name)).substitute({k: str(v) for k, v in values.items()})
