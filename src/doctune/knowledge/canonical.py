"""Canonical entities: the surface names of one entity, found in many chunks, merged into one graph node (KGGen-style
entity clustering), with every merge listed and its reason.

Rules, applied in order over a union-find of surface names (so that chains merge transitively):

1. ``same_key``: the same :func:`~doctune.knowledge.names.name_key` (case, article, quotes, plural);
2. ``alias``: "Long Name (ABBR)" or "ABBR (Long Name)" written in a mention's citation or description (the short form's
   letters must occur, in order, in the long form: Schwartz-Hearst); and a name followed by a generic noun
   (:data:`GENERIC_NOUNS`: "S language", "R environment") is an alias of the bare name when that is an entity too;
3. ``acronym``: an all-caps name that spells the initials of a multi-word name of the same document;
4. ``person_name``: persons with the same surname and compatible given names (same first name, or an initial that
   matches exactly one first name; middle initials ignored); a bare surname only when exactly one person has it.
   Nicknames are not guessed ("Rick Becker" stays apart from "Richard A. Becker");
5. ``embedding``: names of the same type whose embeddings are at least ``merge_similarity`` close (cosine), unless a
   guard says they are different entities: they differ in a number ("Python 2"/"Python 3"), one has at most two
   characters ("C"/"R"), or one is the other plus symbols ("C"/"C++").
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from doctune.knowledge.names import name_key
from doctune.knowledge.rows import ENTITY_TYPES, KGMention, KGMerge, KGNode, KGRelation

log = logging.getLogger(__name__)

#: nouns that, after a name, still name the same entity ("the S language" is S)
GENERIC_NOUNS = ("language", "program", "system", "software", "environment", "project", "package")
_STOPWORDS = frozenset({"of", "the", "and", "for", "a", "an", "in", "on", "to", "&", "with"})
_NAME_PARTICLES = frozenset({"van", "von", "de", "der", "den", "da", "di", "du", "le", "la", "del", "dos", "ter"})
_NAME_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "phd"})
_PAREN = re.compile(r"\(\s*([^()]{1,80}?)\s*\)")
_ACRONYM = re.compile(r"^[A-Z][A-Z0-9&]{1,9}$")
_DIGITS = re.compile(r"\d+")


@dataclass
class Canon:
    """The result of canonicalisation: every surface name's node, the nodes, and the merges that made them."""

    node_of: dict[str, str]
    nodes: list[KGNode]
    merges: list[KGMerge] = field(default_factory=list)


@dataclass
class _Name:
    """What is known of one surface name: its mentions (input order) and the relations that use it."""

    name: str
    key: str
    first: int
    mentions: list[KGMention] = field(default_factory=list)
    relations: int = 0
    chunk_ids: set[str] = field(default_factory=set)
    doc_ids: set[str] = field(default_factory=set)

    @property
    def type(self) -> str:
        return majority_type(m.type for m in self.mentions)


def majority_type(types) -> str:
    """The most frequent entity type (unknown types count as "other"; ties by ENTITY_TYPES order)."""
    counts = Counter(t if t in ENTITY_TYPES else "other" for t in types)
    if not counts:
        return "other"
    return max(counts, key=lambda t: (counts[t], -ENTITY_TYPES.index(t)))


class _UnionFind:
    """Union-find over surface names; every union that joined two groups is kept as an event (a, b, reason, score)."""

    def __init__(self, names: Sequence[str]):
        self.parent = {n: n for n in names}
        self.events: list[tuple[str, str, str, float]] = []

    def find(self, name: str) -> str:
        root = name
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[name] != root:
            self.parent[name], name = root, self.parent[name]
        return root

    def union(self, a: str, b: str, reason: str, score: float = 1.0) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[rb] = ra
        self.events.append((a, b, reason, score))
        return True

    def members(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = defaultdict(list)
        for name in self.parent:
            groups[self.find(name)].append(name)
        return groups


# -- rule helpers ---------------------------------------------------------------------------------------------------
def is_abbreviation(short: str, long: str) -> bool:
    """Whether ``short`` abbreviates ``long`` (Schwartz-Hearst: its letters occur in order in the long form, its first
    letter starts the long form); "CRAN" / "Comprehensive R Archive Network"."""
    s, lf = short.strip(), long.strip()
    alnum = [c for c in s.lower() if c.isalnum()]
    if " " in s or len(alnum) < 2 or len(s) > 10 or len(lf.split()) < 2 or len(lf) <= len(s) + 2:
        return False
    if not any(c.isupper() for c in s) or s[0].lower() != lf[0].lower():
        return False
    text, i = lf.lower(), len(lf) - 1
    for pos in range(len(alnum) - 1, -1, -1):
        ch = alnum[pos]
        while i >= 0 and (text[i] != ch or (pos == 0 and i > 0 and text[i - 1].isalnum())):
            i -= 1
        if i < 0:
            return False
        i -= 1
    return True


def initials(name: str) -> set[str]:
    """Upper-case initials of a multi-word name: of all words, of words that are not stopwords, of capitalised words."""
    parts = [w for w in re.split(r"[\s\-/]+", name.strip()) if w and w[0].isalnum()]
    if len(parts) < 2:
        return set()
    variants = [parts, [w for w in parts if w.lower() not in _STOPWORDS], [w for w in parts if w[0].isupper()]]
    return {"".join(w[0] for w in v).upper() for v in variants if len(v) >= 2}


def person_parts(name: str) -> tuple[str, str]:
    """(first given name, surname), lower case; the given name is "" for a bare surname. "J. M. Chambers" ->
    ("j", "chambers"); "Chambers, John" -> ("john", "chambers"); "Guido van Rossum" -> ("guido", "van rossum")."""
    if name.count(",") == 1:
        last, given = name.split(",")
        name = f"{given} {last}"
    tokens = [t for t in re.split(r"[\s.]+", name.strip()) if t and t.lower().strip(",") not in _NAME_SUFFIXES]
    if not tokens:
        return "", ""
    start = len(tokens) - 1
    while start > 0 and tokens[start - 1].lower() in _NAME_PARTICLES:
        start -= 1
    surname = " ".join(tokens[start:]).lower()
    return (tokens[0].lower() if start > 0 else ""), surname


def guard_blocks(a: str, b: str) -> bool:
    """Whether two names must stay apart whatever their embeddings say: they differ in a number or version, one has at
    most two characters, or one is the other plus symbols (a trailing "()" of a function name does not count)."""
    ka, kb = name_key(a), name_key(b)
    if ka == kb:
        return False
    if _DIGITS.findall(ka) != _DIGITS.findall(kb) or len(ka) <= 2 or len(kb) <= 2:
        return True
    sa, sb = sorted((ka.removesuffix("()"), kb.removesuffix("()")), key=len)
    return sa != sb and sb.startswith(sa) and not any(c.isalnum() for c in sb[len(sa) :])


# -- the rules ------------------------------------------------------------------------------------------------------
def _merge_same_key(names: dict[str, _Name], uf: _UnionFind) -> None:
    first_of: dict[str, str] = {}
    for info in names.values():
        if info.key in first_of:
            uf.union(first_of[info.key], info.name, "same_key")
        else:
            first_of[info.key] = info.name


def _merge_aliases(names: dict[str, _Name], mentions: Sequence[KGMention], uf: _UnionFind) -> None:
    by_key = {}
    for info in names.values():
        by_key.setdefault(info.key, info.name)
    for mention in mentions:  # "Long Name (ABBR)" / "ABBR (Long Name)" in what the document says of a mention
        for text in (mention.citation.quote if mention.citation else "", mention.description):
            for m in _PAREN.finditer(text or ""):
                inner = next((by_key[k] for c in _inner_forms(m.group(1)) if (k := name_key(c)) in by_key), None)
                before = text[: m.start()].split()
                outer = next(
                    (
                        by_key[k]
                        for n in range(min(8, len(before)), 0, -1)
                        if (k := name_key(" ".join(before[-n:]))) in by_key
                    ),
                    None,
                )
                if inner and outer and (is_abbreviation(inner, outer) or is_abbreviation(outer, inner)):
                    uf.union(outer, inner, "alias")
    for key, name in by_key.items():  # "S language" is an alias of "S", "methods package" of "methods"; "q()" of "q"
        words = key.split(" ")
        bare = " ".join(words[:-1]) if len(words) >= 2 and words[-1] in GENERIC_NOUNS else key.removesuffix("()")
        if bare != key and (found := by_key.get(bare) or by_key.get(name_key(bare))):
            uf.union(found, name, "alias")


def _inner_forms(inner: str) -> list[str]:
    first = re.split(r"[,;]", inner)[0].strip()
    return [inner] if first == inner else [inner, first]


def _merge_acronyms(names: dict[str, _Name], uf: _UnionFind) -> None:
    spelled: dict[tuple[str, str], list[str]] = defaultdict(list)  # (doc_id, initials) -> multi-word names
    for info in names.values():
        for letters in initials(info.name):
            for doc_id in info.doc_ids:
                spelled[(doc_id, letters)].append(info.name)
    for info in names.values():
        short = info.name.strip()
        if not _ACRONYM.match(short) or sum(c.isupper() for c in short) < 2:
            continue
        letters = "".join(c for c in short if c.isalpha())
        roots = {uf.find(n) for d in sorted(info.doc_ids) for n in spelled.get((d, letters), [])}
        roots.discard(uf.find(info.name))
        if len(roots) == 1:
            long_name = next(n for d in sorted(info.doc_ids) for n in spelled.get((d, letters), []))
            uf.union(long_name, info.name, "acronym")


def _merge_persons(names: dict[str, _Name], uf: _UnionFind) -> None:
    by_surname: dict[str, list[tuple[str, str]]] = defaultdict(list)  # surname -> (given, name)
    for info in names.values():
        if info.type == "person":
            given, surname = person_parts(info.name)
            if surname:
                by_surname[surname].append((given, info.name))
    for people in by_surname.values():
        full: dict[str, list[str]] = defaultdict(list)
        initial: dict[str, list[str]] = defaultdict(list)
        for given, name in people:
            if len(given) > 1:
                full[given].append(name)
            elif given:
                initial[given].append(name)
        for group in full.values():
            for other in group[1:]:
                uf.union(group[0], other, "person_name")
        for letter, group in initial.items():
            firsts = [f for f in full if f[0] == letter]
            anchor = full[firsts[0]][0] if len(firsts) == 1 else group[0] if not firsts else None
            for name in group if anchor is not None else []:
                uf.union(anchor, name, "person_name")
        persons = {uf.find(name) for given, name in people if given}
        if len(persons) == 1:
            anchor = next(name for given, name in people if given)
            for given, name in people:
                if not given:
                    uf.union(anchor, name, "person_name")


def _merge_embeddings(
    names: dict[str, _Name], uf: _UnionFind, embed: Callable[[list[str]], np.ndarray], threshold: float
) -> None:
    reps: dict[str, _Name] = {}
    for info in names.values():
        reps.setdefault(info.key, info)
    forms = list(reps.values())
    if len(forms) < 2:
        return
    try:
        vectors = np.asarray(embed([f.name for f in forms]), dtype=np.float64)
        if vectors.shape[0] != len(forms):
            raise ValueError(f"{vectors.shape[0]} vectors for {len(forms)} names")
    except Exception as exc:  # an embedder failure costs the embedding merges only
        log.warning("embedding merges skipped: %s", exc)
        return
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.where(norms == 0, 1.0, norms)
    by_type: dict[str, list[int]] = defaultdict(list)
    for i, info in enumerate(forms):
        by_type[info.type].append(i)
    pairs: list[tuple[float, int, int]] = []
    for idx in by_type.values():
        sims = vectors[idx] @ vectors[idx].T
        for a, b in zip(*np.nonzero(np.triu(sims >= threshold, k=1)), strict=True):
            pairs.append((float(sims[a, b]), idx[a], idx[b]))
    groups = uf.members()
    for score, i, j in sorted(pairs, key=lambda p: (-p[0], p[1], p[2])):
        a, b = forms[i].name, forms[j].name
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb or any(guard_blocks(x, y) for x in groups[ra] for y in groups[rb]):
            continue
        uf.union(a, b, "embedding", round(score, 4))
        groups[uf.find(a)] = groups.pop(ra) + groups.pop(rb)


# -- nodes ----------------------------------------------------------------------------------------------------------
def _slug(key: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")[:60].strip("-")


def _node_ids(canonical_keys: list[str]) -> list[str]:
    """A stable, unique id per canonical key: "n-<slug>", with a short hash when two keys share a slug (the key that
    is its own slug keeps the plain id)."""
    by_slug: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(canonical_keys):
        by_slug[_slug(key)].append(i)
    ids = [""] * len(canonical_keys)
    for slug, idx in by_slug.items():
        ranked = sorted(idx, key=lambda i: (canonical_keys[i].replace(" ", "-") != slug, canonical_keys[i]))
        for rank, i in enumerate(ranked):
            digest = hashlib.sha256(canonical_keys[i].encode()).hexdigest()[:6]
            ids[i] = f"n-{slug}" if rank == 0 and slug else f"n-{slug}-{digest}" if slug else f"n-{digest}"
    return ids


def _merges_of(node_id: str, canonical: str, events: list[tuple[str, str, str, float]]) -> list[KGMerge]:
    """One merge per member other than the canonical name: the union that brought it in (a BFS from the canonical)."""
    adjacent: dict[str, list[tuple[str, str, float]]] = defaultdict(list)
    for a, b, reason, score in events:
        adjacent[a].append((b, reason, score))
        adjacent[b].append((a, reason, score))
    seen, queue, out = {canonical}, deque([canonical]), []
    while queue:
        for other, reason, score in adjacent[queue.popleft()]:
            if other not in seen:
                seen.add(other)
                queue.append(other)
                out.append(KGMerge(node_id=node_id, canonical=canonical, merged=other, reason=reason, score=score))
    return out


def canonicalise(
    mentions: Sequence[KGMention],
    relations: Sequence[KGRelation] = (),
    embed: Callable[[list[str]], np.ndarray] | None = None,
    merge_similarity: float = 0.9,
) -> Canon:
    """Merge the surface names of ``mentions`` (and the endpoints of ``relations``) into canonical nodes.

    ``mentions`` are taken to be in chunk order (a node's description and citation are its first mention's). A relation
    endpoint that no mention names becomes a node of type "other". Names whose normal form is empty are left out."""
    names: dict[str, _Name] = {}

    def note(name: str, chunk_id: str, doc_id: str) -> _Name | None:
        key = name_key(name)
        if not key:
            return None
        info = names.setdefault(name, _Name(name=name, key=key, first=len(names)))
        info.chunk_ids.add(chunk_id)
        info.doc_ids.add(doc_id)
        return info

    for mention in mentions:
        if (info := note(mention.name, mention.chunk_id, mention.doc_id)) is not None:
            info.mentions.append(mention)
    for relation in relations:
        for end in (relation.source, relation.target):
            if (info := note(end, relation.chunk_id, relation.doc_id)) is not None:
                info.relations += 1

    uf = _UnionFind(list(names))
    _merge_same_key(names, uf)
    _merge_aliases(names, mentions, uf)
    _merge_acronyms(names, uf)
    _merge_persons(names, uf)
    if embed is not None:
        _merge_embeddings(names, uf, embed, merge_similarity)

    groups = sorted(uf.members().values(), key=lambda g: min(names[n].first for n in g))
    canonicals = []
    for group in groups:
        counts = Counter(m.name for n in group for m in names[n].mentions)
        canonicals.append(max(group, key=lambda n: (counts[n], len(n.strip()), names[n].relations, n)))
    ids = _node_ids([names[c].key for c in canonicals])

    order = {id(m): i for i, m in enumerate(mentions)}
    events: dict[str, list[tuple[str, str, str, float]]] = defaultdict(list)
    for event in uf.events:
        events[uf.find(event[0])].append(event)
    nodes, merges, node_of = [], [], {}
    for group, canonical, node_id in zip(groups, canonicals, ids, strict=True):
        infos = [names[n] for n in group]
        ms = sorted((m for i in infos for m in i.mentions), key=lambda m: order[id(m)])
        counts = Counter(m.name for m in ms)
        aliases = sorted({n.strip() for n in group} - {canonical.strip()}, key=lambda n: (-counts[n], n))
        nodes.append(
            KGNode(
                node_id=node_id,
                name=canonical.strip(),
                type=majority_type(m.type for m in ms),
                aliases=aliases,
                description=next((m.description.strip() for m in ms if m.description.strip()), ""),
                citation=next((m.citation for m in ms if m.citation is not None), None),
                chunk_ids=sorted({c for i in infos for c in i.chunk_ids}),
                doc_ids=sorted({d for i in infos for d in i.doc_ids}),
                mentions=len(ms),
            )
        )
        merges.extend(_merges_of(node_id, canonical, events.get(uf.find(canonical), [])))
        node_of.update(dict.fromkeys(group, node_id))
    log.info("canonical names: %d surface names -> %d nodes, %d merges", len(names), len(nodes), len(merges))
    return Canon(node_of=node_of, nodes=nodes, merges=merges)
