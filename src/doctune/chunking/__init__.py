"""Chunking: split a document's clean text into sentence-boundary chunks between ``min_chars`` and ``max_chars``."""

from doctune.chunking.chunker import TextChunk, chunk_document, chunk_text

__all__ = ["TextChunk", "chunk_document", "chunk_text"]
