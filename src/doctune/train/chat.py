"""A terminal chat with a trained model (or the base model): history kept, chat template applied, tokens streamed.

:func:`load_chat_model` loads the base model alone, the base model with a LoRA adapter on top, or a fully
fine-tuned model; :func:`chat_loop` runs the conversation. Decoding is greedy, so answers are reproducible.
Commands: ``/reset`` clears the history, ``/exit`` (or end of input) ends the chat, and, when the workspace has a
knowledge graph, ``/kg on|off`` gives the model the graph context of each question (the relations of the entities it
names, as in the kg recipe's "graph as context" examples; ``/kg`` shows the state and the last context).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

EXIT_COMMAND = "/exit"
RESET_COMMAND = "/reset"
KG_COMMAND = "/kg"


def _has_tokenizer(folder: Path) -> bool:
    return (folder / "tokenizer_config.json").is_file() or (folder / "tokenizer.json").is_file()


def load_chat_model(weights_dir: Path | None, base_model_dir: Path) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for chatting, in eval mode, in float32 on the CPU (on CUDA when there is one).

    ``weights_dir`` None: the base model alone. A folder with ``adapter_config.json``: the PEFT adapter on top of
    ``base_model_dir``. Any other folder: a full model, loaded directly. The tokenizer comes from ``weights_dir``
    when it has one (training saves it there), else from the base model.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_model_dir = Path(base_model_dir)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    weights = Path(weights_dir) if weights_dir is not None else None
    tokenizer_dir = weights if weights is not None and _has_tokenizer(weights) else base_model_dir
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    if weights is None:
        model = AutoModelForCausalLM.from_pretrained(str(base_model_dir), dtype=torch.float32)
        log.info("chatting with the base model %s", base_model_dir.name)
    elif (weights / "adapter_config.json").is_file():
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(str(base_model_dir), dtype=torch.float32)
        model = PeftModel.from_pretrained(base, str(weights))
        log.info("chatting with %s + the adapter %s", base_model_dir.name, weights)
    elif (weights / "config.json").is_file():
        model = AutoModelForCausalLM.from_pretrained(str(weights), dtype=torch.float32)
        log.info("chatting with the model %s", weights)
    else:
        raise FileNotFoundError(f"{weights} holds neither a LoRA adapter nor a model (no config.json)")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device).eval(), tokenizer


def _flusher(write: Callable[[str], Any]) -> Callable[[], None]:
    """The ``flush`` of the stream ``write`` is bound to (``sys.stdout.write``), else a no-op."""
    flush = getattr(getattr(write, "__self__", None), "flush", None)
    return flush if callable(flush) else (lambda: None)


def generate_streamed(
    model: Any,
    tokenizer: Any,
    messages: list[dict[str, str]],
    write: Callable[[str], Any],
    max_new_tokens: int = 256,
) -> str:
    """Greedily generate the assistant's next turn after ``messages``, writing text pieces as they come; the reply.

    Generation runs in a thread feeding a ``TextIteratorStreamer``; an error in it is raised here.
    """
    import torch
    from transformers import TextIteratorStreamer

    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    inputs = {k: v.to(model.device) for k, v in inputs.items()}
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with torch.no_grad():
                model.generate(
                    **inputs,
                    streamer=streamer,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                    pad_token_id=tokenizer.pad_token_id,
                )
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)
            streamer.end()

    thread = threading.Thread(target=run, name="doctune-chat-generate", daemon=True)
    thread.start()
    flush = _flusher(write)
    pieces = []
    for piece in streamer:
        if piece:
            pieces.append(piece)
            write(piece)
            flush()
    thread.join()
    if failure:
        raise failure[0]
    return "".join(pieces).strip()


def chat_loop(
    model: Any,
    tokenizer: Any,
    system_prompt: str | None,
    read_line: Callable[[str], str] = input,
    write: Callable[[str], Any] = sys.stdout.write,
    max_new_tokens: int = 256,
    prompt: str = "> ",
    graph_context: Callable[[str], str] | None = None,
    kg: bool = False,
) -> list[dict[str, str]]:
    """Chat in the terminal until ``/exit`` or end of input; returns the conversation's turns since the last reset.

    Each user line is added to the history, the whole conversation (``system_prompt`` first, when given) goes
    through the chat template, and the answer is streamed to ``write`` token by token, then kept in the history.
    ``/reset`` forgets the conversation; blank lines are ignored. ``read_line(prompt)`` reads one line
    (``input`` by default; ``EOFError`` or ``KeyboardInterrupt`` ends the chat). With ``graph_context`` (a question ->
    its graph context, "" when the graph knows none of its names), ``/kg on|off`` switches it (``kg``: the start
    state); when on, the line the model sees is the context followed by the question, the history keeps the line.
    """
    from doctune.knowledge.context import with_context

    history: list[dict[str, str]] = []
    last_context = ""
    kg_help = f", {KG_COMMAND} on|off graph context" if graph_context is not None else ""
    write(f"Chat ({RESET_COMMAND} clears the conversation{kg_help}, {EXIT_COMMAND} or Ctrl-D ends it)\n")
    while True:
        try:
            line = read_line(prompt)
        except (EOFError, KeyboardInterrupt):
            write("\n")
            break
        text = line.strip()
        if not text:
            continue
        if text == EXIT_COMMAND:
            break
        if text == RESET_COMMAND:
            history = []
            write("(conversation cleared)\n")
            continue
        if text.split()[0] == KG_COMMAND:
            arg = text[len(KG_COMMAND) :].strip().lower()
            if graph_context is None:
                write("no knowledge graph in this workspace: run `doctune generate kg` first\n")
            elif arg in ("on", "off"):
                kg = arg == "on"
                write(f"kg: {'on' if kg else 'off'}\n")
            elif arg:
                write(f"usage: {KG_COMMAND} on|off\n")
            else:
                write(f"kg: {'on' if kg else 'off'}\n" + (f"last context:\n{last_context}\n" if last_context else ""))
            continue
        history.append({"role": "user", "content": text})
        turns = list(history)
        if kg and graph_context is not None:
            last_context = graph_context(text)
            turns[-1] = {"role": "user", "content": with_context(text, last_context)}
        messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + turns
        reply = generate_streamed(model, tokenizer, messages, write, max_new_tokens=max_new_tokens)
        write("\n")
        history.append({"role": "assistant", "content": reply})
    return history
