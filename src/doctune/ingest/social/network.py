"""Fetching a Mastodon post's text from its server's public status API, only when ``social.resolve_network``.

``GET <scheme>://<host>/api/v1/statuses/<id>``, the id being the last part of the post's URI
(``https://host/users/NAME/statuses/ID`` or ``https://host/@NAME/ID``). Requests are rate-limited
(``social.network_requests_per_minute``), capped (``social.network_max_requests``) and cached in the workspace
(``cache/social.sqlite``: answers and 404/410s; a failed request is retried on the next import).
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

from doctune.config_social import SocialConfig
from doctune.ingest.social.feeds import status_post
from doctune.ingest.social.mastodon import ItemProblem
from doctune.llm.ratelimit import RateLimiter
from doctune.plugins import open_wal_database
from doctune.records import Post

log = logging.getLogger(__name__)

_STATUS_PATH = re.compile(r"^/(?:users/[^/]+/statuses|@[^/]+)/(\d+)/?$")


def status_api_url(uri: str) -> str | None:
    """The public status API URL of a Mastodon post URI; ``None`` for a URI of another shape."""
    parsed = urlparse(uri)
    match = _STATUS_PATH.match(parsed.path)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or match is None:
        return None
    return f"{parsed.scheme}://{parsed.netloc}/api/v1/statuses/{match.group(1)}"


class StatusFetcher:
    """``fetch(uri) -> Post | None``, counting requests, cache hits and failures in ``stats``."""

    def __init__(self, config: SocialConfig, cache_path: Path):
        self.config = config
        self.limiter = RateLimiter(config.network_requests_per_minute)
        self.cache_path = cache_path
        self._conn: sqlite3.Connection | None = None
        self.stats: Counter[str] = Counter()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = open_wal_database(
                self.cache_path, "CREATE TABLE IF NOT EXISTS statuses (url TEXT PRIMARY KEY, body TEXT, code INTEGER)"
            )
        return self._conn

    def fetch(self, uri: str) -> Post | None:
        url = status_api_url(uri)
        if url is None:
            self.stats["not_a_status_uri"] += 1
            return None
        row = self._db().execute("SELECT body, code FROM statuses WHERE url = ?", (url,)).fetchone()
        if row is not None:
            self.stats["cache_hits"] += 1
            body, code = row
        else:
            if self.stats["requests"] >= self.config.network_max_requests:
                self.stats["skipped_over_cap"] += 1
                return None
            body, code = self._get(url)
            if code is None:
                return None
            if code == 200 or code in (404, 410):
                conn = self._db()
                conn.execute("INSERT OR REPLACE INTO statuses (url, body, code) VALUES (?, ?, ?)", (url, body, code))
                conn.commit()
        if code != 200 or body is None:
            self.stats["not_found"] += 1
            return None
        try:
            status = json.loads(body)
            return status_post(status, url, "") if isinstance(status, dict) else None
        except (json.JSONDecodeError, ItemProblem) as exc:
            self.stats["bad_answers"] += 1
            log.warning("%s: unusable status answer (%s)", url, exc)
            return None

    def _get(self, url: str) -> tuple[str | None, int | None]:
        self.limiter.acquire()
        self.stats["requests"] += 1
        request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "doctune"})
        try:
            with urllib.request.urlopen(request, timeout=self.config.network_timeout_s) as response:
                return response.read().decode("utf-8", errors="replace"), response.status
        except urllib.error.HTTPError as exc:
            if exc.code not in (404, 410):
                self.stats["failures"] += 1
                log.warning("%s: HTTP %s", url, exc.code)
            return None, exc.code
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            self.stats["failures"] += 1
            log.warning("%s: %s", url, getattr(exc, "reason", exc))
            return None, None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
