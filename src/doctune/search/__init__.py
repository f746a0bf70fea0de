"""Personal search over the ``posts`` artifact: SQLite FTS5 (BM25) keyword search, embedding search, and their
reciprocal rank fusion (``doctune search``). The stage functions are in ``doctune.stages.search``."""

from doctune.search.hybrid import Searcher, SearchHit, rrf
from doctune.search.index import Filters
from doctune.search.query import parse_query

__all__ = ["Filters", "SearchHit", "Searcher", "parse_query", "rrf"]
