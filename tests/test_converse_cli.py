"""`doctune converse`, `doctune chat --character` and `doctune conversations` on the real embedded SmolLM2 with two
random LoRA adapters over one loaded base: each character speaks with its own adapter, every turn is logged, the
switches change live, unknown characters fail with a clear message."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from doctune.cli import app
from doctune.config import DoctuneConfig
from doctune.records import Speech
from doctune.registry import ModelEntry, Registry
from doctune.workspace import Workspace
from test_fidelity import _hamlet_speeches, _random_adapter

runner = CliRunner()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from doctune.llm.embedded import EMBEDDED_NAME
    from doctune.llm.hf import embedded_safetensors_dir

    root = tmp_path_factory.mktemp("converse")
    raw = {
        "project": "talk",
        "workspace": str(root / "ws"),
        "converse": {"max_tokens": 6, "rag_own": 1, "rag_scene": 1, "boost_words": 4},
    }
    config_file = root / "doctune.yaml"
    config_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    cfg = DoctuneConfig.model_validate(raw)
    ws = Workspace(root / "ws")
    ws.start_run("ingest", cfg).write_artifact("speeches", _hamlet_speeches(), Speech)
    registry = Registry(ws)
    for i, character in enumerate(["HORATIO", "OPHELIA"]):
        folder = ws.root / "runs" / f"r{i}" / "adapter"
        _random_adapter(embedded_safetensors_dir(), folder, seed=i)
        registry.register(
            ModelEntry(
                id=f"run-{character.lower()}",
                project="talk",
                created_at=f"2025-01-0{i + 1}T00:00:00",
                base_model=EMBEDDED_NAME,
                method="lora",
                weights_path=str(folder.relative_to(ws.root)),
                dataset_sha256="x",
                config_hash="y",
                labels={"recipe": "character", "character": character, "play": "Hamlet"},
            )
        )
    return config_file, ws


def _cli(config_file, *args: str, input: str | None = None):
    return runner.invoke(app, ["--config", str(config_file), *args], input=input, catch_exceptions=False)


def test_unknown_character_fails_with_the_known_names(project):
    config_file, _ws = project
    res = _cli(config_file, "converse", "--characters", "HORATIO,YORICK")
    assert res.exit_code == 1 and "unknown character 'YORICK'" in res.output and "OPHELIA" in res.output
    res = _cli(config_file, "chat", "--character", "Nobody")
    assert res.exit_code == 1 and "unknown character 'Nobody'" in res.output


@pytest.mark.slow
def test_converse_gives_each_character_its_own_adapter_and_logs_every_turn(project):
    config_file, ws = project
    res = _cli(config_file, "converse", "--characters", "horatio,ophelia,hamlet", "--turns", "3", "--seed", "5")
    assert res.exit_code == 0, res.output
    folder = next((ws.root / "conversations").glob("*-conversation-*"))
    turns = [json.loads(line) for line in (folder / "turns.jsonl").read_text().splitlines()]
    assert [t["speaker"] for t in turns] == ["HORATIO", "OPHELIA", "HAMLET"]
    # one base in memory, each character its own adapter; Hamlet has none: the base model and his card
    assert [t["adapter"] for t in turns] == ["run-horatio", "run-ophelia", None]
    assert [t["seed"] for t in turns] == [5, 6, 7]
    for t in turns:
        assert t["completion_tokens"] >= 1 and len(t["prompt_sha256"]) == 64 and t["settings"]["rag"] is True
        assert t["sources"], "retrieval is on: each turn names its sources"
    header = json.loads((folder / "header.json").read_text())
    assert header["models"] == {"HORATIO": "run-horatio", "OPHELIA": "run-ophelia", "HAMLET": None}
    assert "/" not in json.dumps(header["settings"]["base_model"])  # a name, no local path
    listed = _cli(config_file, "conversations", "list")
    assert listed.exit_code == 0 and folder.name[:20] in listed.output
    shown = _cli(config_file, "conversations", "show", folder.name[:24])
    assert shown.exit_code == 0 and "**HORATIO**" in shown.output and "**OPHELIA**" in shown.output


@pytest.mark.slow
def test_character_chat_switches_live_and_logs(project):
    config_file, ws = project
    script = "\n".join(
        [
            "/rag off",
            "/bias",
            "Good morrow, lady.",
            "/sources",
            "/character yorick",
            "/character horatio",
            "/rag on",
            "Who goes there?",
            "/sources",
            "/settings",
            "/exit",
        ]
    )
    res = _cli(config_file, "chat", "--character", "ophelia", input=script + "\n")
    assert res.exit_code == 0, res.output
    out = res.output
    assert "Talking to OPHELIA (adapter run-ophelia)" in out
    assert "rag: off" in out and "bias: on" in out
    assert "(no passages retrieved for the last reply)" in out
    assert "unknown character 'yorick'" in out and "now talking to HORATIO (adapter run-horatio)" in out
    assert "Hamlet" in out.split("Who goes there?")[-1]  # /sources after a retrieved turn names the play
    chats = sorted((ws.root / "conversations").glob("*-chat-*"))
    assert len(chats) == 2  # a new log per character
    first = [json.loads(x) for x in (chats[0] / "turns.jsonl").read_text().splitlines()]
    assert [(t["speaker"], t["user"]) for t in first] == [("STRANGER", True), ("OPHELIA", False)]
    assert first[1]["adapter"] == "run-ophelia" and first[1]["settings"]["rag"] is False
