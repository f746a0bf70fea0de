"""The keyword index: SQLite FTS5 over the ``posts`` artifact (text, alt text, content warning, author), BM25 ranked.

``<workspace>/<search.index_dir>/search.sqlite`` holds::

    meta(key, value)     posts_sha256 (the artifact it was built from), schema, counts
    posts                one row per post (rowid = its position in the artifact + 1): what a hit shows and filters on
    posts_fts            FTS5, tokenizer ``unicode61 remove_diacritics 2`` (any spaced script; ``cafe`` finds ``café``)
    posts_cjk            FTS5, tokenizer ``trigram``, only the posts with Chinese, Japanese, Korean, Thai ... text:
                         unicode61 makes a whole unspaced run one token, trigram finds any run of 3+ characters;
                         shorter runs (2-character Japanese words) are found with instr() on that table (a scan
                         of those posts only, ranked shortest first: no BM25 there)

A build writes a new file and replaces the old one, so a search running meanwhile reads a whole index.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from doctune.records import Post
from doctune.search.query import ParsedQuery, has_no_space_script

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
INDEX_FILE = "search.sqlite"
#: BM25 column weights of posts_fts: text, alt, content_warning, author
BM25_WEIGHTS = (1.0, 0.8, 0.8, 0.5)

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE posts (
    rowid INTEGER PRIMARY KEY, post_id TEXT, platform TEXT, kind TEXT, author TEXT, is_mine INTEGER,
    created_at TEXT, url TEXT, text TEXT, alt TEXT, content_warning TEXT
);
CREATE VIRTUAL TABLE posts_fts USING fts5(
    text, alt, content_warning, author, content='posts', content_rowid='rowid',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE posts_cjk USING fts5(body, tokenize='trigram');
"""


@dataclass
class Filters:
    """Which posts a search may return; None means any."""

    kinds: tuple[str, ...] | None = None
    since: str | None = None  # inclusive lower bound on created_at (ISO string prefix)
    until: str | None = None  # exclusive upper bound on created_at
    mine: bool | None = None

    def sql(self, alias: str = "p") -> tuple[str, list[object]]:
        """A WHERE fragment (starting with AND, or '') and its parameters."""
        parts, params = [], []
        if self.kinds:
            parts.append(f"{alias}.kind IN ({','.join('?' * len(self.kinds))})")
            params += list(self.kinds)
        if self.since:
            parts.append(f"{alias}.created_at >= ?")
            params.append(self.since)
        if self.until:
            parts.append(f"{alias}.created_at != '' AND {alias}.created_at < ?")
            params.append(self.until)
        if self.mine is not None:
            parts.append(f"{alias}.is_mine = ?")
            params.append(int(self.mine))
        return "".join(f" AND {p}" for p in parts), params


def index_path(root: Path) -> Path:
    return root / INDEX_FILE


def _read_only(path: Path, **kwargs: object) -> sqlite3.Connection:
    """A read-only connection (the URI form percent-encodes any character of the path)."""
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, **kwargs)  # type: ignore[arg-type]


def read_meta(path: Path) -> dict[str, str]:
    """The meta table of an index file; {} when it is missing or unreadable (then it is rebuilt)."""
    if not path.exists():
        return {}
    try:
        conn = _read_only(path)
        try:
            return dict(conn.execute("SELECT key, value FROM meta").fetchall())
        finally:
            conn.close()
    except sqlite3.Error as exc:
        log.warning("search index %s unreadable (%s): it will be rebuilt", path, exc)
        return {}


def is_current(path: Path, posts_sha256: str) -> bool:
    """Whether the index at ``path`` was built, with this schema, from the posts artifact of that sha256."""
    meta = read_meta(path)
    return meta.get("posts_sha256") == posts_sha256 and meta.get("schema") == SCHEMA_VERSION


def build_index_file(path: Path, posts: Sequence[Post], posts_sha256: str) -> dict[str, int]:
    """Write the index of ``posts`` to ``path`` (atomically); returns counts (posts, cjk_posts, empty_posts)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    rows, cjk_rows, empty = [], [], 0
    for i, p in enumerate(posts, start=1):
        alt = "\n".join(a for a in p.media_alt if a)
        row = (i, p.post_id, p.platform, p.kind, p.author, int(p.is_mine), p.created_at, p.url, p.text, alt)
        rows.append((*row, p.content_warning))
        body = "\n".join(x for x in (p.content_warning, p.text, alt) if x)
        if not body:
            empty += 1
        elif has_no_space_script(body):
            cjk_rows.append((i, body))
    counts = {"posts": len(rows), "cjk_posts": len(cjk_rows), "empty_posts": empty}
    conn = sqlite3.connect(tmp)
    try:
        conn.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + _SCHEMA)
        conn.executemany("INSERT INTO posts VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
        conn.execute(
            "INSERT INTO posts_fts (rowid, text, alt, content_warning, author) "
            "SELECT rowid, text, alt, content_warning, author FROM posts"
        )
        conn.executemany("INSERT INTO posts_cjk (rowid, body) VALUES (?, ?)", cjk_rows)
        conn.execute("CREATE INDEX posts_kind ON posts (kind, created_at)")
        conn.execute("INSERT INTO posts_fts (posts_fts) VALUES ('optimize')")
        meta = {"posts_sha256": posts_sha256, "schema": SCHEMA_VERSION, **{k: str(v) for k, v in counts.items()}}
        conn.executemany("INSERT INTO meta VALUES (?, ?)", list(meta.items()))
        conn.commit()
    finally:
        conn.close()
    os.replace(tmp, path)
    log.info("search index: %d posts (%d with CJK text) -> %s", len(rows), len(cjk_rows), path)
    return counts


class KeywordIndex:
    """Read side of the index: BM25 search and the rows hits show. One connection, opened read-only."""

    def __init__(self, path: Path):
        self.path = path
        self.conn = _read_only(path, check_same_thread=False)
        self.meta = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())

    def close(self) -> None:
        self.conn.close()

    def search(self, parsed: ParsedQuery, filters: Filters, limit: int) -> list[tuple[int, float]]:
        """(rowid, bm25 score: higher is better) of the best ``limit`` posts. Posts holding every word come first,
        then (when fewer than ``limit``) those holding some of them; no-space-script runs are matched in posts_cjk."""
        where, params = filters.sql()
        found: dict[int, float] = {}
        expressions = [parsed.fts("AND")]
        if len(parsed.words) + len(parsed.phrases) > 1:
            expressions.append(parsed.fts("OR"))
        weights = ", ".join(str(w) for w in BM25_WEIGHTS)
        for expr in expressions if (parsed.words or parsed.phrases) else []:
            sql = (
                f"SELECT f.rowid, -bm25(posts_fts, {weights}) AS score FROM posts_fts f JOIN posts p ON p.rowid = "
                f"f.rowid WHERE posts_fts MATCH ?{where} ORDER BY bm25(posts_fts, {weights}) LIMIT ?"
            )
            for rowid, score in self.conn.execute(sql, [expr, *params, limit]):
                found.setdefault(rowid, score)
            if len(found) >= limit:
                break
        if parsed.cjk:
            found = self._merge_cjk(found, self._search_cjk(parsed, where, params, limit))
        return sorted(found.items(), key=lambda kv: -kv[1])[:limit]

    def _search_cjk(self, parsed: ParsedQuery, where: str, params: list[object], limit: int) -> dict[int, float]:
        expr = parsed.trigram()
        if expr is not None:
            sql = (
                "SELECT c.rowid, -bm25(posts_cjk) FROM posts_cjk c JOIN posts p ON p.rowid = c.rowid "
                f"WHERE posts_cjk MATCH ?{where} ORDER BY bm25(posts_cjk) LIMIT ?"
            )
            return dict(self.conn.execute(sql, [expr, *params, limit]).fetchall())
        # trigram cannot match runs under 3 characters (and its LIKE returns nothing for them): scan those posts
        contains = " AND ".join("instr(c.body, ?) > 0" for _ in parsed.cjk)
        sql = (
            f"SELECT c.rowid FROM posts_cjk c JOIN posts p ON p.rowid = c.rowid WHERE {contains}{where} "
            "ORDER BY length(c.body) LIMIT ?"
        )
        rows = self.conn.execute(sql, [*parsed.cjk, *params, limit]).fetchall()
        return {rowid: 1.0 / (1 + i) for i, (rowid,) in enumerate(rows)}  # shorter posts first: no BM25 for a scan

    @staticmethod
    def _merge_cjk(found: dict[int, float], cjk: dict[int, float]) -> dict[int, float]:
        """Both rankings on one scale: each list's scores divided by its best, a post in both summing them."""
        merged: dict[int, float] = {}
        for part in (found, cjk):
            top = max(part.values(), default=1.0) or 1.0
            for rowid, score in part.items():
                merged[rowid] = merged.get(rowid, 0.0) + score / top
        return merged

    def rows(self, rowids: Sequence[int]) -> dict[int, dict[str, object]]:
        """The stored columns of these posts, by rowid."""
        if not rowids:
            return {}
        cur = self.conn.execute(f"SELECT * FROM posts WHERE rowid IN ({','.join('?' * len(rowids))})", list(rowids))
        names = [d[0] for d in cur.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}

    def filter_columns(self) -> tuple[list[str], list[str], list[int]]:
        """kind, created_at and is_mine of every post in rowid order (for filtering embedding hits in memory)."""
        rows = self.conn.execute("SELECT kind, created_at, is_mine FROM posts ORDER BY rowid").fetchall()
        return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
