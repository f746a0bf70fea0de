"""Word banks and the two voices of the synthetic account (``synthetic_account``): feed authors write plain,
sentence-case English (some German and Japanese); the owner writes in a recognisable voice (lowercase, no final
period, signature openers and closers, an emoji habit), so a "sounds like me" classifier has signal."""

from __future__ import annotations

import random

# topic name -> words and short phrases; the order of TOPICS is the order of the affinity vector
TOPIC_WORDS: dict[str, list[str]] = {
    "gardening": [
        "tomatoes",
        "compost",
        "seedlings",
        "raised bed",
        "mulch",
        "runner beans",
        "the greenhouse",
        "aphids",
        "courgettes",
        "pruning",
        "the allotment",
        "wildflowers",
        "potting soil",
        "dahlias",
    ],
    "synths": [
        "the modular rack",
        "an analog filter",
        "the sequencer",
        "oscillators",
        "a patch cable",
        "the arpeggiator",
        "envelope settings",
        "a drum machine",
        "the mixer",
        "wavetables",
        "eurorack",
        "a low-pass sweep",
        "MIDI clock",
        "the reverb pedal",
    ],
    "cycling": [
        "the gravel bike",
        "a century ride",
        "tubeless tyres",
        "the climb",
        "bike lanes",
        "the chain",
        "a headwind",
        "panniers",
        "the commute",
        "cadence",
        "the bike shop",
        "a puncture",
        "cleats",
        "the descent",
    ],
    "baking": [
        "sourdough",
        "the starter",
        "rye flour",
        "croissants",
        "the oven",
        "a crumb shot",
        "proofing",
        "cinnamon buns",
        "the dough",
        "a banneton",
        "brioche",
        "lamination",
        "the levain",
        "focaccia",
    ],
    "astronomy": [
        "Jupiter",
        "the telescope",
        "a meteor shower",
        "the Moon",
        "dark skies",
        "Saturn's rings",
        "the Orion nebula",
        "an eclipse",
        "star charts",
        "light pollution",
        "the eyepiece",
        "a comet",
        "the Milky Way",
        "astrophotography",
    ],
    "football": [
        "the derby",
        "a penalty",
        "the transfer window",
        "the keeper",
        "extra time",
        "the league table",
        "a red card",
        "the striker",
        "the manager",
        "VAR",
        "a clean sheet",
        "the away end",
        "the midfield",
        "a hat-trick",
    ],
    "crypto": [
        "the token",
        "a blockchain",
        "NFTs",
        "the airdrop",
        "a wallet",
        "gas fees",
        "the DAO",
        "staking rewards",
        "a rug pull",
        "the whitepaper",
        "mining rigs",
        "an altcoin",
        "the exchange",
        "smart contracts",
    ],
    "celebrity": [
        "the red carpet",
        "a celebrity breakup",
        "the premiere",
        "paparazzi",
        "the awards show",
        "a reality star",
        "the tabloids",
        "a surprise engagement",
        "the gossip column",
        "fan theories",
        "the after-party",
        "a publicist",
        "the photo shoot",
        "an influencer",
    ],
}
TOPICS: list[str] = list(TOPIC_WORDS)

FEED_TEMPLATES = [
    "Spent the morning on {a} and {b}.",
    "Does anyone have a good guide to {a}?",
    "Unpopular opinion: {a} is overrated, {b} is where it is at.",
    "Finally sorted out {a} after weeks of trying.",
    "Quick update on {a}: it went better than expected.",
    "Reading a long thread about {a} and {b} tonight.",
    "Three things I learned this year about {a}.",
    "If you are new to {a}, start with {b}.",
    "Photos from the weekend: {a}, {b} and a lot of coffee.",
    "Hot take on {a}, please be kind in the replies.",
]
GERMAN_TEMPLATES = [
    "Heute den ganzen Tag mit {a} beschäftigt.",
    "Hat jemand Erfahrung mit {a}?",
    "Endlich wieder Zeit für {a} und {b}.",
    "Kleiner Bericht über {a}, mehr später.",
]
JAPANESE_TEMPLATES = [
    "今日は{a}について考えていました。",
    "週末は{a}と{b}で忙しかったです。",
    "{a}の写真を撮りました。",
    "{a}が好きな人いますか？",
]

MY_OPENERS = ["ok so", "ngl", "honestly", "small win:", "today in", "hot take:"]
MY_BODIES = [
    "{a} is doing the thing again",
    "spent way too long on {a}",
    "{a} + {b} = my whole personality now",
    "i keep coming back to {a}",
    "nobody warned me about {a}",
    "finally got {a} right, only took forever",
    "thinking about {a} when i should be sleeping",
]
MY_CLOSERS = [
    "anyway, back to the garden",
    "10/10 would recommend",
    "send help",
    "more soon",
    "this is fine",
    "no notes",
]
MY_EMOJI = ["🌱", "✨", "🎛️", "🚲", "🍞"]
MY_REPLY_BODIES = [
    "ngl {a} is underrated",
    "oh this is so good, {a} especially",
    "same here, {a} broke me last week",
    "have you tried {b}? changed everything for me",
    "honestly this is why i love {a}",
    "saving this for later, {a} is my jam",
]
MY_JAPANESE = ["{a}を勉強中です 🌱", "今日は{a}の日でした ✨"]


def topic_phrase(rng: random.Random, topic: str) -> str:
    return rng.choice(TOPIC_WORDS[topic])


def bare(phrase: str) -> str:
    """The phrase without its leading article ("the compost" -> "compost")."""
    for article in ("a ", "an ", "the "):
        if phrase.startswith(article):
            return phrase[len(article) :]
    return phrase


def hashtag_name(topic: str) -> str:
    return topic.replace(" ", "")


def feed_sentence(rng: random.Random, language: str, a: str, b: str) -> str:
    """One sentence by a feed author: plain sentence-case style in ``language`` (en, de, ja)."""
    bank = {"de": GERMAN_TEMPLATES, "ja": JAPANESE_TEMPLATES}.get(language, FEED_TEMPLATES)
    sentence = rng.choice(bank).format(a=a, b=b)
    return sentence[0].upper() + sentence[1:] if language == "en" else sentence


def my_post_text(rng: random.Random, a: str, b: str, japanese: bool = False) -> str:
    """One post in the owner's voice: lowercase, a signature opener/closer, an emoji most of the time."""
    if japanese:
        return rng.choice(MY_JAPANESE).format(a=a)
    parts = []
    if rng.random() < 0.6:
        parts.append(rng.choice(MY_OPENERS))
    parts.append(rng.choice(MY_BODIES).format(a=a, b=b))
    if rng.random() < 0.5:
        parts.append("... " + rng.choice(MY_CLOSERS))
    text = " ".join(parts).lower()
    if rng.random() < 0.7:
        text += " " + rng.choice(MY_EMOJI)
    return text


def my_reply_text(rng: random.Random, a: str, b: str) -> str:
    """A reply in the owner's voice (the mention of the parent's author is added as HTML by the caller)."""
    text = rng.choice(MY_REPLY_BODIES).format(a=a, b=b).lower()
    if rng.random() < 0.6:
        text += " " + rng.choice(MY_EMOJI)
    return text


AUTHOR_NAMES = [
    "mira",
    "tomasz",
    "keiko",
    "jonas",
    "priya",
    "lucas",
    "amara",
    "felix",
    "noor",
    "sven",
    "yuki",
    "elena",
    "omar",
    "grace",
    "henrik",
    "lena",
    "kofi",
    "ines",
    "ravi",
    "zoe",
    "anton",
    "chloe",
    "dario",
    "hana",
    "ivan",
    "julia",
    "kai",
    "laila",
    "marek",
    "nina",
]
DOMAINS = ["mastodon.example", "fosstodon.example", "toot.example", "chaos.example"]
