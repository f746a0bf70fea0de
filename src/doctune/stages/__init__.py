"""Pipeline stages: one module per stage, each with ``run(config, workspace, ...) -> StageResult``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StageResult:
    """What a stage did, for the CLI to report."""

    stage: str
    outputs: dict[str, str] = field(default_factory=dict)  # artifact name -> path
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


class NothingUsable(Exception):
    """A stage ran but produced nothing a later stage can use (no document, no item, no train split...).

    The message is one line naming the stage and why; ``doctune`` exits non-zero with it."""
