"""What `doctune rank` has shown: ``rank/shown.json`` in the workspace, post id -> when it was first shown.

A later run skips those posts (or, with ``--include-shown``, ranks them too, marked as shown). The file is written
atomically; an unreadable one is logged and treated as empty, so ranking never fails on it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)


class ShownLog:
    """The shown posts of one workspace."""

    def __init__(self, workspace_root: Path):
        self.path = Path(workspace_root) / "rank" / "shown.json"
        self.shown: dict[str, str] = self._load()

    def _load(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return {str(k): str(v) for k, v in data.get("shown", {}).items()}
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("%s: unreadable (%s): treated as empty", self.path, exc)
            return {}

    def __contains__(self, post_id: str) -> bool:
        return post_id in self.shown

    def mark(self, post_ids: Iterable[str]) -> None:
        """Record ``post_ids`` as shown now (the first time is kept) and save."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for pid in post_ids:
            self.shown.setdefault(pid, now)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"shown": self.shown}, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)
