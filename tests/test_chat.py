"""The terminal chat on the real embedded SmolLM2: streamed answers, history across turns, /reset, /exit, EOF."""

from __future__ import annotations

import pytest

from doctune.train.chat import chat_loop, load_chat_model

SYSTEM = "You are a helpful assistant. Answer in one short sentence."


@pytest.fixture(scope="module")
def base_dir():
    from doctune.llm.hf import embedded_safetensors_dir

    return embedded_safetensors_dir()


@pytest.fixture(scope="module")
def chat_model(base_dir):
    return load_chat_model(None, base_dir)


class Script:
    """``read_line`` replaying lines, recording the prompts it was given; EOF after the last line."""

    def __init__(self, lines: list[str]):
        self.lines = list(lines)
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if not self.lines:
            raise EOFError
        return self.lines.pop(0)


class Recorder:
    """``write`` recording every call."""

    def __init__(self):
        self.calls: list[str] = []

    def __call__(self, text: str) -> int:
        self.calls.append(text)
        return len(text)


@pytest.mark.slow
def test_chat_streams_keeps_history_and_resets(chat_model, monkeypatch):
    model, tokenizer = chat_model
    seen: list[list[dict[str, str]]] = []
    original = tokenizer.apply_chat_template

    def recording_template(messages, *args, **kwargs):
        seen.append([dict(m) for m in messages])
        return original(messages, *args, **kwargs)

    monkeypatch.setattr(tokenizer, "apply_chat_template", recording_template)
    script = Script(["What is the capital of France?", "", "And of Italy?", "/reset", "Hi!", "/exit", "never read"])
    out = Recorder()
    history = chat_loop(model, tokenizer, SYSTEM, read_line=script, write=out, max_new_tokens=12)

    assert script.lines == ["never read"]  # /exit stops reading
    assert len(seen) == 3  # three questions; the blank line, /reset and /exit generate nothing
    first, second, third = seen
    assert first == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    # the second turn sees the first question and its answer
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[1]["content"] == "What is the capital of France?" and second[2]["content"]
    assert second[3]["content"] == "And of Italy?"
    # after /reset only the system prompt and the new question
    assert third == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Hi!"}]
    assert [m["role"] for m in history] == ["user", "assistant"] and history[0]["content"] == "Hi!"
    assert history[1]["content"]
    assert "(conversation cleared)\n" in out.calls

    # each answer came in several writes (streamed), and its pieces make up the reply kept in the history
    text = "".join(out.calls)
    assert second[2]["content"] in text and history[1]["content"] in text
    answer_writes = []
    current: list[str] = []
    for call in out.calls[1:]:  # after the banner
        if call == "\n":
            if current:
                answer_writes.append(current)
            current = []
        elif call != "(conversation cleared)\n":
            current.append(call)
    assert len(answer_writes) == 3
    assert all(len(pieces) >= 2 for pieces in answer_writes)
    assert "".join(answer_writes[2]).strip() == history[1]["content"]


@pytest.mark.slow
def test_chat_is_greedy_and_ends_at_eof(chat_model):
    model, tokenizer = chat_model
    replies = []
    for _ in range(2):
        history = chat_loop(
            model, tokenizer, None, read_line=Script(["Name a colour."]), write=Recorder(), max_new_tokens=8
        )
        assert [m["role"] for m in history] == ["user", "assistant"]
        replies.append(history[1]["content"])
    assert replies[0] == replies[1]


@pytest.mark.slow
def test_load_chat_model_variants(tmp_path, base_dir):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    full, _ = load_chat_model(base_dir, base_dir)  # a full model folder is loaded directly
    assert not isinstance(full, PeftModel) and not full.training
    lora = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base_dir),
        LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM"),
    )
    lora.save_pretrained(tmp_path / "adapter")
    with_adapter, tokenizer = load_chat_model(tmp_path / "adapter", base_dir)
    assert isinstance(with_adapter, PeftModel) and tokenizer.chat_template  # tokenizer from the base model
    with pytest.raises(FileNotFoundError):
        load_chat_model(tmp_path / "missing", base_dir)
