"""The characters' voices: one base model in memory, one LoRA adapter per character, switched per turn.

:class:`Voices` wraps :class:`doctune.evaluate.perplexity.ModelBench` (PEFT ``load_adapter`` / ``set_adapter``:
N characters cost one base model plus N small adapters) and generates a turn with transformers: sampled with a
per-turn seed (reproducible), streamed piece by piece, the character's logits processors (steering) applied. A
character without an adapter speaks with the base model and its card.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from doctune.converse.conversation import Reply
from doctune.evaluate.perplexity import ModelBench, target_nll

log = logging.getLogger(__name__)


def words_used(text: str, vocabulary: Sequence[str]) -> list[str]:
    """The words of ``vocabulary`` that occur in ``text`` as whole words (any case), in vocabulary order."""
    found = {w.lower() for w in re.findall(r"[A-Za-z']+", text)}
    return [w for w in vocabulary if w.lower() in found]


class Voices:
    """A base model and the characters' adapters (see the module docstring)."""

    def __init__(self, base_dir: Path | str, adapters: Mapping[str, tuple[str, Path]] | None = None):
        """``adapters``: character -> (registry id, weights folder)."""
        self.bench = ModelBench(base_dir)
        self.base_name = Path(base_dir).name
        self.base_label = self.base_name  #: the registry's name of the base (set by the session)
        self.adapter_ids: dict[str, str] = {}
        for character, (entry_id, weights) in (adapters or {}).items():
            self.add(character, entry_id, weights)

    @property
    def tokenizer(self) -> Any:
        return self.bench.tokenizer

    def add(self, character: str, entry_id: str, weights: Path | str) -> None:
        self.bench.add(entry_id, weights)
        self.adapter_ids[character.upper()] = entry_id

    def adapter_for(self, character: str) -> str | None:
        return self.adapter_ids.get(character.upper())

    def speak(
        self,
        character: str,
        messages: list[dict[str, str]],
        seed: int,
        write: Callable[[str], Any] | None = None,
        *,
        max_tokens: int = 40,
        temperature: float = 0.7,
        top_p: float = 0.9,
        repetition_penalty: float = 1.0,
        adapter: str | bool | None = True,
        logits_processors: Sequence[Any] = (),
        boost_words: Sequence[str] = (),
    ) -> Reply:
        """The character's next turn. ``adapter``: True: its own adapter (the base when it has none), None or
        False: the base, a string: that registry id."""
        import torch
        from transformers import LogitsProcessorList, TextIteratorStreamer

        name = self.adapter_for(character) if adapter is True else (adapter or None)
        tokenizer = self.bench.tokenizer
        inputs = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        sample = temperature > 0
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_tokens,
            "do_sample": sample,
            "temperature": temperature if sample else None,
            "top_p": top_p if sample else None,
            "top_k": None,
            "repetition_penalty": repetition_penalty if repetition_penalty != 1.0 else None,
            "pad_token_id": tokenizer.pad_token_id,
            "streamer": streamer,
        }
        if logits_processors:
            kwargs["logits_processor"] = LogitsProcessorList(list(logits_processors))
        failure: list[BaseException] = []
        out: list[Any] = []
        start = time.perf_counter()

        with self.bench.using(name) as model:
            batch = {k: v.to(model.device) for k, v in inputs.items()}

            def run() -> None:
                try:
                    torch.manual_seed(seed)
                    with torch.no_grad():
                        out.append(model.generate(**batch, **kwargs))
                except BaseException as exc:  # handed to the caller's thread
                    failure.append(exc)
                    streamer.end()

            thread = threading.Thread(target=run, name="doctune-voice", daemon=True)
            thread.start()
            pieces = []
            for piece in streamer:
                if piece:
                    pieces.append(piece)
                    if write is not None:
                        write(piece)
                        flush = getattr(getattr(write, "__self__", None), "flush", None)
                        if callable(flush):
                            flush()
            thread.join()
        if failure:
            raise failure[0]
        n_prompt = int(batch["input_ids"].shape[1])
        n_new = int(out[0].shape[1]) - n_prompt if out else 0
        text = "".join(pieces).strip()
        return Reply(
            text=text,
            adapter=name,
            prompt_tokens=n_prompt,
            completion_tokens=n_new,
            latency_s=time.perf_counter() - start,
            boosted_used=words_used(text, boost_words),
        )

    def choose_next(self, transcript: str, candidates: Sequence[str]) -> str:
        """The candidate whose name the base model finds likeliest to speak next after ``transcript``."""
        question = (
            f"{transcript.strip()}\n\nWho speaks next? One of: {', '.join(candidates)}. Answer with the name only."
        )
        scores = {}
        with self.bench.using(None) as model:
            for name in candidates:
                messages = [{"role": "user", "content": question}, {"role": "assistant", "content": name}]
                scores[name] = target_nll(model, self.bench.tokenizer, messages)[0]
        return min(candidates, key=lambda c: (scores[c], candidates.index(c)))
