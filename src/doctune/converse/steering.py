"""Runtime steering of a character's replies by logit bias, on the token ids the model really uses.

A character's distinctive words (from the exploration statistics, :func:`boost_words_for`) are boosted and a
configured list (modern words, the names of other plays' characters) is suppressed. A word is written by the
model in several surface forms (:func:`word_variants`: ``word``, `` word``, ``Word``, `` Word``), and each form is
whatever token sequence the tokenizer makes of it (:func:`token_sequences`): ``" lord"`` is one token of
SmolLM2, ``"heaven"`` two (``he`` + ``aven``) and ``" Ophelia"`` three.

:class:`SequenceBias` holds biases on token sequences ``(*prefix, last)``: ``last`` gets the bias only when the
context ends with ``prefix``. So a suppressed multi-token word penalises its *last* token only after the rest of
the word was generated, and every other word that shares its first token stays generatable. Rules of
:func:`build_steering`:

* a **boosted** single-token form: ``boost_bias`` on that token; a multi-token form: ``first_share * boost_bias``
  (half by default) on its first token, so the word can start without boosting every word that shares that token
  as much, and the full ``boost_bias`` on each continuation token after the word's preceding tokens;
* a **suppressed** form: ``suppress_bias`` (-100: never sampled) on its last token after its prefix;
* **suppression wins**: a boost never applies to a token a suppression targets in the same context, and a boosted
  form that contains a suppressed form as a leading part (suppress ``"Smart"``, boost ``"Smartphone"`` =
  ``Smart`` + ``phone``) could never be completed, so it is dropped (logged, and marked ``blocked`` in
  :meth:`SequenceBias.describe`). A boosted form that is a prefix of a suppressed one is kept (boost ``"smart"``,
  suppress ``"smartphone"``: ``smart`` is boosted, ``phone`` after it banned).

**Any tokenization.** A model also writes words with tokens other than the tokenizer's own: sampled SmolLM2 writes
``Comput`` + ``er`` for ``"Computer"`` (one token when tokenized). Given the vocabulary (the text of each token id,
:func:`hf_vocabulary`, :func:`llama_vocabulary`), :class:`SpellingBan` also bans, for each suppressed form, every
token that would complete the form from what the context already spells (``er`` after ``Comput``, ``r`` after
``Compute``, ``ia`` after `` Ophel``), only at a word start and only when the word ends there (a token ``er``
followed by punctuation is banned, ``ers`` is not). Without a vocabulary only the tokenizer's own sequences count.

Limits: only the four surface forms (not ``COMPUTER`` nor ``computers``); a form without a leading space matches
inside longer words at the id level (``lord`` in ``warlord``; the spelling ban checks the word start); the first
token of a boosted multi-token form may be a common word (``"Thee"`` is `` The`` + ``e``: `` The`` gets half the
bias). Biases are added to the raw logits, before temperature and top-p, in both runtimes (transformers applies
custom processors before its warpers; llama.cpp runs the custom sampler first in its chain).
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from doctune.records import Speech

log = logging.getLogger(__name__)

#: ``tokenize(text) -> ids`` with no BOS or other special token added
Tokenize = Callable[[str], Sequence[int]]

#: share of ``boost_bias`` put on the first token of a boosted multi-token form
FIRST_SHARE = 0.5


def word_variants(word: str) -> list[str]:
    """The surface forms of ``word`` to bias: as given, with a leading space, capitalised, capitalised with a space."""
    word = word.strip()
    cap = word[:1].upper() + word[1:]
    return list(dict.fromkeys([word, f" {word}", cap, f" {cap}"]))


class SpellingBan:
    """Bans the token that would complete a suppressed surface form, whatever tokens spelled its start.

    ``vocabulary[id]`` is the text of token ``id`` ("" for special tokens). A form starting with a letter counts only
    at a word start (no letter or digit before it); the completing token must end the word (its text is the rest of
    the form, or the rest then a character that is no letter or digit).
    """

    def __init__(self, forms: Iterable[str], vocabulary: Sequence[str], bias: float = -100.0):
        self.forms = [f for f in dict.fromkeys(forms) if f]
        self.vocabulary = list(vocabulary)
        self.bias = bias
        self._order = sorted(range(len(self.vocabulary)), key=self.vocabulary.__getitem__)
        self._sorted = [self.vocabulary[i] for i in self._order]
        self._width = max((len(f) for f in self.forms), default=0) + 1
        self._completing: dict[str, tuple[int, ...]] = {}

    def completing(self, rest: str) -> tuple[int, ...]:
        """Token ids whose text is ``rest``, or ``rest`` then a character that is no letter or digit."""
        if rest not in self._completing:
            lo, hi = bisect_left(self._sorted, rest), bisect_left(self._sorted, rest + "\U0010ffff")
            self._completing[rest] = tuple(
                self._order[k]
                for k in range(lo, hi)
                if len(self._sorted[k]) == len(rest) or not self._sorted[k][len(rest)].isalnum()
            )
        return self._completing[rest]

    def banned(self, context: Sequence[int]) -> set[int]:
        """The token ids that would complete a form after ``context``."""
        if not self.forms:
            return set()
        tail: list[str] = []
        for token in reversed(context):
            tail.append(self.vocabulary[token] if 0 <= token < len(self.vocabulary) else "")
            if sum(map(len, tail)) >= self._width:
                break
        text = "".join(reversed(tail))
        out: set[int] = set()
        for form in self.forms:
            for done in range(len(form)):
                if done and not text.endswith(form[:done]):
                    continue
                before = len(text) - done
                if form[0].isalnum() and before > 0 and text[before - 1].isalnum():
                    continue
                out.update(self.completing(form[done:]))
        return out


def _forms(tokenize: Tokenize, word: str) -> dict[tuple[int, ...], str]:
    """``{token ids: variant}`` for each distinct non-empty sequence of :func:`word_variants` (first variant kept)."""
    forms: dict[tuple[int, ...], str] = {}
    for variant in word_variants(word):
        seq = tuple(int(i) for i in tokenize(variant))
        if seq and seq not in forms:
            forms[seq] = variant
    return forms


def token_sequences(tokenize: Tokenize, word: str) -> list[tuple[int, ...]]:
    """The distinct token id sequences the tokenizer makes of each of :func:`word_variants` (empty ones dropped)."""
    return list(_forms(tokenize, word))


class SequenceBias:
    """Logit biases on token sequences: ``{(*prefix, last): bias}`` adds ``bias`` to ``last`` after ``prefix``.

    An empty prefix always matches. When several entries match the same token in one context, a negative one
    (suppression) wins, the most negative first; otherwise the largest boost applies (boosts do not stack).
    ``rows`` are the descriptive rows of :meth:`describe` (set by :func:`build_steering`); ``spelling`` an optional
    :class:`SpellingBan` whose banned tokens count as suppressed too.
    """

    def __init__(
        self,
        biases: Mapping[tuple[int, ...], float],
        rows: Iterable[dict[str, Any]] = (),
        spelling: SpellingBan | None = None,
    ):
        self.biases = {tuple(int(i) for i in seq): float(b) for seq, b in biases.items() if seq}
        self.rows = list(rows)
        self.spelling = spelling
        by_prefix: dict[int, dict[tuple[int, ...], dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
        for seq, bias in self.biases.items():
            by_prefix[len(seq) - 1][seq[:-1]][seq[-1]] = bias
        self._by_length = {n: {p: dict(t) for p, t in table.items()} for n, table in sorted(by_prefix.items())}

    def __len__(self) -> int:
        return len(self.biases)

    def biases_for(self, input_ids: Sequence[int] | np.ndarray) -> dict[int, float]:
        """``{token: bias}`` for the next token after the context ``input_ids``."""
        context = input_ids.tolist() if isinstance(input_ids, np.ndarray) else list(input_ids)
        boosts: dict[int, float] = {}
        suppressed: dict[int, float] = {}
        for n, table in self._by_length.items():
            if n > len(context):
                break
            targets = table.get(tuple(context[len(context) - n :]) if n else ())
            for token, bias in (targets or {}).items():
                if bias < 0:
                    suppressed[token] = min(suppressed.get(token, 0.0), bias)
                else:
                    boosts[token] = max(boosts.get(token, 0.0), bias)
        if self.spelling is not None:
            for token in self.spelling.banned(context):
                suppressed[token] = min(suppressed.get(token, 0.0), self.spelling.bias)
        return {**{t: b for t, b in boosts.items() if t not in suppressed}, **suppressed}

    def apply(self, input_ids: Sequence[int] | np.ndarray, logits: np.ndarray) -> np.ndarray:
        """``logits`` (the vocabulary's, for the token after ``input_ids``) plus the matching biases (a copy)."""
        out = np.array(logits, copy=True)
        for token, bias in self.biases_for(input_ids).items():
            if 0 <= token < out.shape[-1]:
                out[..., token] += bias
        return out

    def describe(self) -> list[dict[str, Any]]:
        """Per word and surface form: ``word``, ``kind`` (boost|suppress), ``variant``, ``ids``, ``pieces`` (when
        the vocabulary was given), ``bias`` and ``blocked`` (a boost a suppression makes unreachable)."""
        return [dict(r) for r in self.rows]


def build_steering(
    tokenize: Tokenize,
    boost: Mapping[str, float] | Sequence[str],
    suppress: Sequence[str],
    boost_bias: float = 3.0,
    suppress_bias: float = -100.0,
    *,
    first_share: float = FIRST_SHARE,
    vocabulary: Sequence[str] | None = None,
) -> SequenceBias:
    """The :class:`SequenceBias` boosting ``boost`` (words, or ``{word: bias}``) and suppressing ``suppress``.

    Rules in the module docstring. ``vocabulary`` (the text of each token id, optional) names each token in
    :meth:`SequenceBias.describe` and bans suppressed words under any tokenization (:class:`SpellingBan`).
    """
    if suppress_bias > 0 or boost_bias < 0:
        raise ValueError("build_steering: boost_bias must be >= 0 and suppress_bias <= 0")
    boosts = dict(boost) if isinstance(boost, Mapping) else dict.fromkeys(boost, boost_bias)
    words = list(dict.fromkeys(w.strip() for w in suppress if w.strip()))
    rows: list[dict[str, Any]] = []

    def row(word: str, kind: str, variant: str, seq: tuple[int, ...], bias: float) -> dict[str, Any]:
        out: dict[str, Any] = {"word": word, "kind": kind, "variant": variant, "ids": list(seq), "bias": bias}
        if vocabulary is not None:
            out["pieces"] = [vocabulary[i] for i in seq]
        return out

    suppressed: dict[tuple[int, ...], float] = {}
    for word in words:
        for seq, variant in _forms(tokenize, word).items():
            suppressed[seq] = min(suppressed.get(seq, 0.0), suppress_bias)
            rows.append({**row(word, "suppress", variant, seq, suppress_bias), "blocked": None})

    boosted: dict[tuple[int, ...], float] = {}
    for word, bias in boosts.items():
        word = word.strip()
        if not word or bias <= 0:
            continue
        for seq, variant in _forms(tokenize, word).items():
            blocker = next((s for s in suppressed if seq[: len(s)] == s), None)
            rows.append({**row(word, "boost", variant, seq, bias), "blocked": list(blocker) if blocker else None})
            if blocker:
                log.warning("steering: boosted %r %s never completes: it starts with suppressed %s", word, seq, blocker)
                continue
            entries = {seq[:1]: bias * first_share if len(seq) > 1 else bias}
            entries.update({seq[: k + 1]: bias for k in range(1, len(seq))})
            for key, value in entries.items():
                boosted[key] = max(boosted.get(key, 0.0), value)

    biases = {**{k: v for k, v in boosted.items() if k not in suppressed}, **suppressed}
    log.debug("steering: %d boosted and %d suppressed words, %d biased sequences", len(boosts), len(words), len(biases))
    spelling = None
    if vocabulary is not None and words:
        spelling = SpellingBan([v for w in words for v in word_variants(w)], vocabulary, suppress_bias)
    return SequenceBias(biases, rows, spelling)


def hf_tokenize(tokenizer: Any) -> Tokenize:
    """``tokenize`` for a transformers tokenizer (no special tokens)."""
    return lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]


def llama_tokenize(llm: Any) -> Tokenize:
    """``tokenize`` for a ``llama_cpp.Llama`` (no BOS, special tokens as text)."""
    return lambda s: llm.tokenize(s.encode("utf-8"), add_bos=False, special=False)


def hf_vocabulary(tokenizer: Any) -> list[str]:
    """The text of each token id of a transformers tokenizer ("" for special tokens)."""
    return tokenizer.batch_decode([[i] for i in range(len(tokenizer))], skip_special_tokens=True)


def llama_vocabulary(llm: Any) -> list[str]:
    """The text of each token id of a ``llama_cpp.Llama`` (bytes that are no whole UTF-8 character replaced)."""
    return [llm.detokenize([i]).decode("utf-8", errors="replace") for i in range(llm.n_vocab())]


def hf_logits_processor(bias: SequenceBias) -> Any:
    """A ``transformers.LogitsProcessor`` applying ``bias`` to each row of the batch (imports torch lazily)."""
    import torch
    from transformers import LogitsProcessor

    class SequenceBiasProcessor(LogitsProcessor):
        """Adds :class:`SequenceBias` to ``scores[batch, vocab]`` per row, given that row's ``input_ids``."""

        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            out = scores.clone()
            for row, ids in enumerate(input_ids.tolist()):
                found = {t: b for t, b in bias.biases_for(ids).items() if 0 <= t < out.shape[-1]}
                if found:
                    index = torch.tensor(list(found), dtype=torch.long, device=out.device)
                    out[row, index] += torch.tensor(list(found.values()), dtype=out.dtype, device=out.device)
            return out

    return SequenceBiasProcessor()


def llama_logits_processor(bias: SequenceBias) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A llama-cpp-python logits processor ``(input_ids, scores) -> scores`` applying ``bias``
    (for ``llama_cpp.LogitsProcessorList([...])`` given to ``Llama.create_completion(logits_processor=...)``)."""

    def process(input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        return bias.apply(input_ids, scores)

    return process


def boost_words_for(
    speeches: Sequence[Speech], character: str, n: int = 12, extra_stopwords: Iterable[str] = ()
) -> list[str]:
    """``character``'s ``n`` most distinctive content words against the rest of its play (the exploration's
    log-odds, :func:`doctune.characters.stats.distinctive_words`), function words and ``extra_stopwords`` left out."""
    from doctune.characters.stats import distinctive_words
    from doctune.evaluate.fidelity import function_words

    if n <= 0:
        return []
    stop = function_words() | {w.lower() for w in extra_stopwords}
    found = distinctive_words(speeches, characters=[character], top_words=4 * n).get(character, [])
    return [w.word for w in found if w.word.lower() not in stop][:n]
