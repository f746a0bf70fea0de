"""Feed ranking (`doctune rank FEED`): read a feed, score its unseen posts by predicted like, remember what was shown,
report the ranked list. The scorers: the embedding + logistic-regression baseline (:mod:`doctune.rank.baseline`) and
a tuned likes model's yes-probability (:func:`doctune.evaluate.likes.yes_probabilities`)."""
