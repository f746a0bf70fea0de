"""Claims checked against source spans: the one check every knowledge recipe uses before it keeps a statement.

:func:`cite_in_chunk` turns a quote into a :class:`~doctune.records.Citation` of a chunk (exact, normalised or fuzzy
match, with document offsets), or None when the chunk does not contain it. :func:`verify_claim` asks the grounding
verifier whether a claim (a wiki sentence, a relation statement, a dialogue turn's claim) is supported by the
cited text: the claim's content words and numbers must occur in it (``doctune.grounding.DeterministicVerifier``;
an ``LLMVerifier`` that passed its check can be given instead).
"""

from __future__ import annotations

from collections.abc import Sequence

from doctune.generate.citations import locate_citation
from doctune.grounding import DeterministicVerifier, GroundingVerdict, GroundingVerifier
from doctune.records import Chunk, Citation

_DEFAULT = DeterministicVerifier()


def cite_in_chunk(quote: str, chunk: Chunk) -> Citation | None:
    """The citation of ``quote`` in ``chunk`` (offsets in the document), or None when the chunk lacks it."""
    match = locate_citation(quote, chunk.text)
    if match is None:
        return None
    return Citation(
        quote=match.quote,
        doc_id=chunk.doc_id,
        chunk_id=chunk.chunk_id,
        char_start=chunk.char_start + match.start,
        char_end=chunk.char_start + match.end,
        method=match.method,
        score=match.score,
    )


def cite_in_chunks(quote: str, chunks: Sequence[Chunk]) -> Citation | None:
    """The citation of ``quote`` in the first of ``chunks`` that contains it."""
    for chunk in chunks:
        if (citation := cite_in_chunk(quote, chunk)) is not None:
            return citation
    return None


def verify_claim(
    claim: str, cited: Sequence[str] | str, topic: str = "", verifier: GroundingVerifier | None = None
) -> GroundingVerdict:
    """Whether ``claim`` is supported by the cited text(s). ``topic`` (an entity name, a heading) is what the claim
    is about; the verifier's question is the topic itself (default: the claim's first words), so the decision rests on the
    claim's own words (and the topic's) being in the citation."""
    texts = [cited] if isinstance(cited, str) else list(cited)
    about = topic.strip() or " ".join(claim.split()[:4])
    return (verifier or _DEFAULT).verify(f"{about}?", claim, texts)
