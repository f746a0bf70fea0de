"""Exploring plays: who speaks, how much, after whom and with which words (``doctune characters``).

:mod:`doctune.characters.stats` computes the statistics from ``Speech`` rows (pure functions);
:mod:`doctune.characters.report` writes them as ``characters.json``, PNG plots and one HTML page.
"""

from doctune.characters.stats import (
    ActCount,
    CharacterStats,
    DistinctiveWord,
    PlayStats,
    Transition,
    analyse,
    distinctive_words,
    log_odds_dirichlet,
    tokenize,
    transitions,
)

__all__ = [
    "ActCount",
    "CharacterStats",
    "DistinctiveWord",
    "PlayStats",
    "Transition",
    "analyse",
    "distinctive_words",
    "log_odds_dirichlet",
    "tokenize",
    "transitions",
]
