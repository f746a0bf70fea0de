"""Per-example perplexity of a recipe's target, and one loaded base model serving many adapters.

:func:`target_nll` is the mean negative log-likelihood (nats per token) of an example's target (its last
assistant turn) given the messages before it, rendered with the chat template exactly as training sees it
(:func:`doctune.train.data.tokenize_example`: the answer tokens and the end-of-turn token are scored, the prompt
is not). ``exp`` of it is the example's perplexity.

:class:`ModelBench` loads a base model once and puts every LoRA adapter on top of it with PEFT
(``load_adapter`` / ``set_adapter``), so scoring N adapters costs one model load, not N. ``None`` names the base
itself (the adapters disabled). NLLs and replies are cached per (model, example), so a second evaluation of the
same pair (the gate, then the fidelity benchmark) costs nothing.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def target_nll(model: Any, tokenizer: Any, messages: Sequence[Mapping[str, str]]) -> tuple[float, int]:
    """``(mean NLL in nats per scored token, number of scored tokens)`` of the last (assistant) message.

    The loss is the model's own (``labels`` given to the forward pass), on the completion-only labels training
    uses; a conversation without a scored token gives ``(nan, 0)``."""
    import torch

    from doctune.train.data import IGNORE_INDEX, tokenize_example

    encoded = tokenize_example([{"role": m["role"], "content": m["content"]} for m in messages], tokenizer)
    if encoded is None:
        return float("nan"), 0
    n_tokens = sum(label != IGNORE_INDEX for label in encoded["labels"][1:])  # the first position is never predicted
    device = next(model.parameters()).device
    input_ids = torch.tensor([encoded["input_ids"]], device=device)
    labels = torch.tensor([encoded["labels"]], device=device)
    with torch.no_grad():
        loss = model(input_ids=input_ids, labels=labels).loss
    return float(loss), int(n_tokens)


def perplexity(mean_nll: float) -> float:
    """``exp(mean_nll)`` (None-safe callers pass only finite values)."""
    return math.exp(mean_nll)


class ModelBench:
    """One base model (loaded once) with any number of LoRA adapters; scores targets and writes replies.

    ``add(name, weights_dir)`` loads an adapter (a folder with ``adapter_config.json``) under ``name``; a folder
    holding a full model is loaded as a separate model. ``nll(name, example_id, messages)`` and
    ``reply(name, example_id, messages, max_tokens)`` use model ``name`` (``None``: the base alone)."""

    def __init__(self, base_dir: Path | str):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.base_dir = Path(base_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.base_dir))
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        base = AutoModelForCausalLM.from_pretrained(str(self.base_dir), dtype=torch.float32)
        self.model: Any = base.to(_device()).eval()
        self._peft = False
        self._full: dict[str, Any] = {}
        self._adapters: dict[str, str] = {}  # our name -> PEFT adapter name
        self._nll: dict[tuple[str | None, str], tuple[float, int]] = {}
        self._replies: dict[tuple[str | None, str, int], str] = {}

    @property
    def names(self) -> list[str]:
        return [*self._adapters, *self._full]

    def add(self, name: str, weights_dir: Path | str) -> None:
        """Load the adapter (or full model) in ``weights_dir`` as ``name``; a second add of a name is a no-op."""
        if name in self._adapters or name in self._full:
            return
        weights = Path(weights_dir)
        if not (weights / "adapter_config.json").is_file():
            if not (weights / "config.json").is_file():
                raise FileNotFoundError(f"{weights} holds neither a LoRA adapter nor a model (no config.json)")
            import torch
            from transformers import AutoModelForCausalLM

            full = AutoModelForCausalLM.from_pretrained(str(weights), dtype=torch.float32)
            self._full[name] = full.to(_device()).eval()
            return
        peft_name = f"a{len(self._adapters)}"  # PEFT adapter names must be plain identifiers
        if not self._peft:
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self.model, str(weights), adapter_name=peft_name).eval()
            self._peft = True
        else:
            self.model.load_adapter(str(weights), adapter_name=peft_name)
        self._adapters[name] = peft_name
        log.info("adapter %s loaded over %s", name, self.base_dir.name)

    @contextlib.contextmanager
    def using(self, name: str | None) -> Iterator[Any]:
        """The model to call for ``name``: the base (adapters disabled), an adapter set active, or a full model."""
        if name in self._full:
            yield self._full[name]
        elif name is None:
            with self.model.disable_adapter() if self._peft else contextlib.nullcontext():
                yield self.model
        elif name in self._adapters:
            self.model.set_adapter(self._adapters[name])
            yield self.model
        else:
            raise KeyError(f"no model {name!r} on this bench (loaded: {', '.join(self.names) or 'none'})")

    def nll(self, name: str | None, key: str, messages: Sequence[Mapping[str, str]]) -> float:
        """Mean target NLL of the conversation ``key`` under model ``name`` (cached)."""
        if (name, key) not in self._nll:
            with self.using(name) as model:
                self._nll[(name, key)] = target_nll(model, self.tokenizer, messages)
        return self._nll[(name, key)][0]

    def cached_replies(self) -> dict[tuple[str | None, str, int], str]:
        """Every reply made so far: (model name or None for the base, example key, max_tokens) -> text."""
        return dict(self._replies)

    def reply(self, name: str | None, key: str, messages: Sequence[Mapping[str, str]], max_tokens: int) -> str:
        """Greedy reply of model ``name`` to ``messages`` (the prompt, without the target), at most ``max_tokens``."""
        cache_key = (name, key, max_tokens)
        if cache_key not in self._replies:
            import torch

            prompt = [{"role": m["role"], "content": m["content"]} for m in messages]
            inputs = self.tokenizer.apply_chat_template(
                prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            with self.using(name) as model:
                inputs = {k: v.to(model.device) for k, v in inputs.items()}
                with torch.no_grad():
                    out = model.generate(
                        **inputs,
                        max_new_tokens=max_tokens,
                        do_sample=False,
                        temperature=None,
                        top_p=None,
                        top_k=None,
                        pad_token_id=self.tokenizer.pad_token_id,
                    )
            new_tokens = out[0, inputs["input_ids"].shape[1] :]
            self._replies[cache_key] = self.tokenizer.decode(new_tokens, skip_special_tokens=True).strip()
        return self._replies[cache_key]


def message_dicts(messages: Sequence[Any]) -> list[dict[str, str]]:
    """Chat messages (``ChatMessage`` rows or dicts) as plain ``{"role", "content"}`` dicts."""
    return [
        {"role": m["role"], "content": m["content"]}
        if isinstance(m, Mapping)
        else {"role": m.role, "content": m.content}
        for m in messages
    ]
