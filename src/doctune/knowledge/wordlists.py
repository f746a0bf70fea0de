"""Word lists of the rule-based entity finder (:mod:`doctune.knowledge.mentions`): stop words, organisation and
thing words, given names, places, software names, generic nouns, common capitalised words."""

from __future__ import annotations


def _word_set(text: str) -> frozenset[str]:
    """The words of ``text``, a set (the word lists below are written as text)."""
    return frozenset(text.split())


STOP = _word_set(
    """The This That These Those In We It Its I A An Chapter Section Appendix Copyright Version Permission However
    Thus Note Notes Figure Table Preface If When For On At As To By Of And Or But So Also See Most Many Some All
    Any Each Our Your You They There Here Then Let Let’s Let's Yes No Not Please Thanks Indeed Footnotes Footnote
    Example Examples Usually Strictly Although Before After Unlike Like Compared Outside Obviously Incidentally
    Patched Release Edition Draft Revised Page Contents Index Introduction Overview Summary Further Either Neither
    Both While Since Because What Which Who How Why Where Our My He She His Her Their Them Mr Mrs Dr"""
)
ORG_WORDS = _word_set(
    """University Universities Laboratories Laboratory Labs Team Foundation Institute Society Inc Corporation Corp
    Project Company Group Consortium Association Committee College School Department Council Agency Ltd LLC GmbH
    Organization Organisation Centre Center Academy Press Bureau"""
)
GIVEN_NAMES = _word_set(
    """Adam Alan Albert Alex Alexander Allan Allen Andrew Ann Anna Anne Anthony Barbara Ben Benjamin Bill Bob Brian
    Bruce Carl Carol Charles Chris Christopher Daniel David Dennis Donald Doug Douglas Edward Elizabeth Emily Emma
    Eric Frank Fred Gary George Grace Guido Harry Helen Henry Ian Jack Jacob James Jane Jason Jeff Jennifer Jim
    Joe John Jonathan Joseph Julia Karen Ken Kenneth Kevin Larry Laura Linda Linus Lisa Margaret Maria Mark Martin
    Mary Matthew Michael Mike Nancy Nicholas Patrick Paul Peter Philip Ray Richard Rick Robert Ross Ryan Sam
    Samuel Sarah Scott Simon Stephen Steve Steven Susan Thomas Tim Timothy Tom Trevor Victor Walter William Brian
    Dennis Ken Bjarne Niklaus Ross Kurt Hadley Friedrich Kurt Martin Ada Alan Grace"""
)
PLACES = _word_set(
    """Adelaide Australia Auckland Zealand England Britain London Oxford Cambridge Scotland Ireland France Paris
    Germany Berlin Vienna Austria Switzerland Zurich Italy Rome Spain Netherlands Amsterdam Europe America Canada
    Toronto Boston Chicago California Texas York Japan Tokyo China Beijing India Africa Asia Murray Hill Jersey
    Mediterranean Budapest Danube Nile Amazon"""
)
SOFTWARE = _word_set(
    """Python Smalltalk Pascal Java JavaScript Perl Fortran Lisp Haskell Ruby Rust Julia Matlab MATLAB Scheme Simula
    Windows Linux Unix UNIX macOS Emacs Excel Stata Minitab Lisp-Stat Modula-3 C++ Go Node"""
)
GENERIC_NOUNS = r"(?:language|program|system|environment|package|window system|interpreter|compiler|shell)s?"
REF_WORDS = r"(?:Chapter|Section|Appendix|Figure|Table)"
CONNECTORS = frozenset({"of", "for", "and", "&"})
THING_WORDS = _word_set(
    """System Systems Language Languages Environment Program Programming Models Model Data Analysis Graphics Software
    Engine Keywords Variables Objects Classes Methods Functions Manual Guide Notes Team"""
)
#: capitalised common words that are not names on their own ("the Start In field", "the Web")
COMMON_CAPS = _word_set("Web Internet FAQ Start Help Home File Edit View Menu Email Online Website Homepage Click")
#: lower-case words that are never a document term
TERM_STOP = _word_set(
    """a an the this that these those it its they them he she we you i one ones thing things way ways example case
    part kind sort lot use used name names word words term terms other same such something anything nothing"""
)
_CODE_KEYWORDS = _word_set("del global nonlocal import from as return def class lambda pass if else for in is not")
