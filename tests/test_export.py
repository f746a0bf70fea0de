"""doctune export: typed DatasetDicts that round-trip, the dataset card, JSONL formats and pushes (fake client)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import datasets
import pytest
import yaml
from typer.testing import CliRunner

from doctune.cli import app
from doctune.config import ConfigError, DoctuneConfig, ExportConfig
from doctune.export.hf import (
    PushError,
    build_dataset_dicts,
    features_for,
    push,
    save_to_disk,
    write_alpaca_jsonl,
    write_chat_jsonl,
)
from doctune.export.jsonl import write_jsonl_splits
from doctune.records import Chunk, Citation, DatasetItem, Document, SourceSpan
from doctune.stages import export as export_stage
from doctune.stages.export import ExportRow, resolve_repo_id
from doctune.workspace import StaleArtifactError, Workspace

TOKEN = "hf_sEcReT_tOkEn_0123456789"
MARKER = ".doctune-owned"  # doctune.owned.MARKER, spelled out so these tests run (and fail) without the module

# --------------------------------------------------------------------------- fixtures


def _documents() -> list[Document]:
    text_a = "Alpha is the first letter. Beta follows alpha."
    text_b = "Gamma rays are energetic. Delta is a river mouth."
    return [
        Document(doc_id="a" * 16, source_path="docs/a.md", format="md", title="A", text=text_a, n_chars=len(text_a)),
        Document(
            doc_id="b" * 16,
            source_path="docs/b.pdf",
            format="pdf",
            title="B",
            text=text_b,
            n_chars=len(text_b),
            spans=[SourceSpan(start=0, end=len(text_b), locator="page 1", page=1)],
        ),
    ]


def _chunks(docs: list[Document]) -> list[Chunk]:
    out = []
    for i, doc in enumerate(docs):
        out.append(
            Chunk(
                chunk_id=f"{doc.doc_id}-0",
                doc_id=doc.doc_id,
                index=0,
                text=doc.text,
                char_start=0,
                char_end=len(doc.text),
                n_chars=len(doc.text),
                heading_path=["Intro"] if i == 0 else [],
                locators=["page 1"] if i == 1 else [],
            )
        )
    return out


def _item(n: int, split: str, chunk: Chunk, **extra: Any) -> DatasetItem:
    quote = chunk.text[:10]
    fields: dict[str, Any] = {
        "item_id": f"item-{n}",
        "kind": "qa",
        "unit_id": chunk.chunk_id,
        "doc_ids": [chunk.doc_id],
        "chunk_ids": [chunk.chunk_id],
        "k": 1,
        "question": f"Question {n}: what does “{quote}” say?",
        "answer": f"Answer {n}.",
        "evaluation_criteria": "Mentions the letter.",
        "difficulty": n % 5 + 1,
        "category": "factual",
        "citations": [
            Citation(
                quote=quote,
                doc_id=chunk.doc_id,
                chunk_id=chunk.chunk_id,
                char_start=0,
                char_end=10,
                method="exact",
                score=100.0 - n / 3,
            )
        ],
        "citations_verified": True,
        "model": "fake",
        "source": "qa",
        "split": split,
        "cluster": n % 2,
        "cluster_label": f"topic {n % 2}",
        "tags": ["greek", f"t{n}"],
    }
    fields.update(extra)
    return DatasetItem(**fields)


def _items(chunks: list[Chunk]) -> list[DatasetItem]:
    c0, c1 = chunks
    return [
        _item(1, "train", c0, reasoning="Because it says so."),
        _item(2, "train", c1, unverified_quotes=["not found"], citations_verified=False),
        _item(3, "train", c0, tags=[]),
        _item(4, "rephrased_eval", c1, kind="rephrased", source="rephrased", source_item_id="item-9"),
        _item(5, "mirror", c0),
        _item(6, "manual", c1, citations=[], source="manual", cluster=-1, cluster_label=""),
    ]


@pytest.fixture
def corpus() -> tuple[list[DatasetItem], list[Chunk], list[Document]]:
    docs = _documents()
    chunks = _chunks(docs)
    return _items(chunks), chunks, docs


class FakeHub:
    """Records pushes instead of touching the network; ``fail`` raises an error quoting the token."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, str, bool, str | None]] = []
        self.splits: dict[str, list[str]] = {}
        self.fail = fail

    def push_dataset_dict(
        self, dataset_dict: datasets.DatasetDict, repo_id: str, config_name: str, private: bool, token: str | None
    ) -> None:
        if self.fail:
            raise RuntimeError(f"401 Unauthorized for token {token}")
        self.calls.append((repo_id, config_name, private, token))
        self.splits[config_name] = list(dataset_dict)


# --------------------------------------------------------------------------- library


def test_features_follow_the_pydantic_models() -> None:
    features = features_for(DatasetItem)
    assert list(features) == list(DatasetItem.model_fields)
    assert features["citations"] == datasets.List(dict(features_for(Citation)))
    assert features["tags"] == datasets.List(datasets.Value("string"))
    assert features["reasoning"] == datasets.Value("string")
    assert features["citations_verified"] == datasets.Value("bool")
    assert features_for(Citation)["score"] == datasets.Value("float64")
    assert features_for(Document)["spans"] == datasets.List(dict(features_for(SourceSpan)))


def test_save_to_disk_round_trips_every_config_and_split(tmp_path: Path, corpus: Any) -> None:
    items, chunks, docs = corpus
    dicts = build_dataset_dicts(items, chunks, docs)
    paths = save_to_disk(dicts, tmp_path / "out")
    assert set(paths) == {"qa", "chunks", "raw", "card"}

    qa = datasets.load_from_disk(str(paths["qa"]))
    assert list(qa) == ["train", "eval", "rephrased_eval", "mirror", "manual"]
    for split in qa:
        expected = [i.model_dump() for i in items if i.split == split]
        assert qa[split].to_list() == expected, split
        assert qa[split].features == features_for(DatasetItem)
    assert qa["eval"].num_rows == 0  # empty, but typed
    assert qa["eval"].features["citations"] == datasets.List(dict(features_for(Citation)))

    loaded_chunks = datasets.load_from_disk(str(paths["chunks"]))
    assert list(loaded_chunks) == ["train"]
    assert loaded_chunks["train"].to_list() == [c.model_dump() for c in chunks]
    raw = datasets.load_from_disk(str(paths["raw"]))
    assert raw["train"].to_list() == [d.model_dump() for d in docs]
    assert [DatasetItem.model_validate(r) for r in qa["train"]] == [i for i in items if i.split == "train"]


def test_empty_dataset_keeps_train_and_eval_with_schema(tmp_path: Path) -> None:
    dicts = build_dataset_dicts([], [], [])
    paths = save_to_disk(dicts, tmp_path)
    for name, model in (("qa", DatasetItem), ("chunks", Chunk), ("raw", Document)):
        loaded = datasets.load_from_disk(str(paths[name]))
        assert list(loaded) == (["train", "eval"] if name == "qa" else ["train"])
        for ds in loaded.values():
            assert ds.num_rows == 0 and ds.features == features_for(model)


def test_dataset_card_lists_configs_splits_and_counts(tmp_path: Path, corpus: Any) -> None:
    items, chunks, docs = corpus
    paths = save_to_disk(build_dataset_dicts(items, chunks, docs), tmp_path, title="demo")
    text = paths["card"].read_text(encoding="utf-8")
    front = yaml.safe_load(text.split("---\n")[1])
    configs = {c["config_name"]: c for c in front["configs"]}
    assert list(configs) == ["qa", "chunks", "raw"] and configs["qa"]["default"] is True
    assert configs["qa"]["data_files"][1] == {"split": "eval", "path": "qa/eval-*"}
    info = {c["config_name"]: {s["name"]: s["num_examples"] for s in c["splits"]} for c in front["dataset_info"]}
    assert info["qa"] == {"train": 3, "eval": 0, "rephrased_eval": 1, "mirror": 1, "manual": 1}
    assert info["chunks"] == {"train": 2} and info["raw"] == {"train": 2}
    assert "# demo" in text and "| qa | train | 3 |" in text


def test_invalid_split_name_is_refused(corpus: Any) -> None:
    items, chunks, docs = corpus
    bad = items[0].model_copy(update={"split": "my split"})
    with pytest.raises(ValueError, match="my split"):
        build_dataset_dicts([bad], chunks, docs)


def test_chat_and_alpaca_jsonl(tmp_path: Path, corpus: Any) -> None:
    items, _, _ = corpus
    assert write_chat_jsonl(items[:2], tmp_path / "c.jsonl", "Be brief.") == 2
    first = json.loads((tmp_path / "c.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": items[0].question},
            {"role": "assistant", "content": items[0].answer},
        ],
        "split": "train",
        "item_id": "item-1",
    }
    assert write_alpaca_jsonl(items[:1], tmp_path / "a.jsonl") == 1
    line = json.loads((tmp_path / "a.jsonl").read_text(encoding="utf-8"))
    assert line == {
        "instruction": items[0].question,
        "input": "",
        "output": items[0].answer,
        "split": "train",
        "item_id": "item-1",
    }

    write_jsonl_splits(items[:1], tmp_path / "out", "Sys.")  # an earlier export, then a stale split file
    (tmp_path / "out" / "chat" / "stale.jsonl").write_text("{}\n", encoding="utf-8")
    files = write_jsonl_splits(items, tmp_path / "out", "Sys.")
    expected = {"train": 3, "eval": 0, "rephrased_eval": 1, "mirror": 1, "manual": 1}
    for fmt in ("chat", "alpaca"):
        assert {split: n for split, (_, n) in files[fmt].items()} == expected
        names = sorted(p.name for p in (tmp_path / "out" / fmt).iterdir())
        assert names == sorted([MARKER, *(f"{s}.jsonl" for s in expected)])
        for split, (path, n) in files[fmt].items():
            lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
            assert len(lines) == n and all(x["split"] == split for x in lines)
    chat_train = [json.loads(x) for x in files["chat"]["train"][0].read_text(encoding="utf-8").splitlines()]
    assert [[m["role"] for m in x["messages"]] for x in chat_train] == [["system", "user", "assistant"]] * 3
    assert [x["item_id"] for x in chat_train] == ["item-1", "item-2", "item-3"]


def test_push_goes_through_the_client(corpus: Any) -> None:
    dicts = build_dataset_dicts(*corpus)
    hub = FakeHub()
    assert push(dicts, "acme/demo", private=True, token=TOKEN, client=hub) == ["qa", "chunks", "raw"]
    assert hub.calls == [("acme/demo", name, True, TOKEN) for name in ("qa", "chunks", "raw")]
    assert hub.splits["qa"] == ["train", "eval", "rephrased_eval", "mirror", "manual"]


def test_push_error_never_shows_the_token(corpus: Any) -> None:
    with pytest.raises(PushError) as info:
        push(build_dataset_dicts(*corpus), "acme/demo", private=True, token=TOKEN, client=FakeHub(fail=True))
    assert TOKEN not in str(info.value) and "***" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_resolve_repo_id_rule() -> None:
    plain, org = ExportConfig(), ExportConfig(org="acme", name="kb")
    assert resolve_repo_id("", plain, "proj") == "proj"
    assert resolve_repo_id("", ExportConfig(org="acme"), "proj") == "acme/proj"
    assert resolve_repo_id("", org, "proj") == "acme/kb"
    assert resolve_repo_id("other", org, "proj") == "acme/other"
    assert resolve_repo_id("me/x", org, "proj") == "me/x"
    for bad in ("a/b/c", "/x", "bad name", "x..y"):
        with pytest.raises(ValueError):
            resolve_repo_id(bad, plain, "proj")
    with pytest.raises(ValueError, match=r"export\.name"):
        resolve_repo_id("", plain, "My Project")


# --------------------------------------------------------------------------- the stage


def _workspace(tmp_path: Path, config: DoctuneConfig, corpus: Any) -> Workspace:
    items, chunks, docs = corpus
    ws = Workspace(tmp_path / "ws")
    ws.start_run("ingest", config).write_artifact("documents", docs, Document)
    ws.start_run("chunk", config).write_artifact("chunks", chunks, Chunk, inputs=["documents"])
    ws.start_run("curate", config).write_artifact("dataset", items, DatasetItem, inputs=["chunks"])
    return ws


def test_stage_exports_and_pushes_privately(
    tmp_path: Path, corpus: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    config = DoctuneConfig(project="demo", export=ExportConfig(org="acme"))
    ws = _workspace(tmp_path, config, corpus)
    hub = FakeHub()
    result = export_stage.run(config, ws, push_to="", progress=False, hub_client=hub)

    assert hub.calls == [("acme/demo", name, True, TOKEN) for name in ("qa", "chunks", "raw")]
    out = ws.root / "export"
    assert result.outputs["qa"] == str(out / "qa") and result.outputs["chat"] == str(out / "chat")
    assert Path(result.outputs["card"]).is_file() and Path(result.outputs["exports"]).is_file()
    assert result.counts["qa/train"] == 3 and result.counts["qa/eval"] == 0
    assert result.stats["pushed_to"] == "acme/demo" and result.stats["private"] is True
    assert datasets.load_from_disk(result.outputs["qa"])["mirror"].to_list() == [corpus[0][4].model_dump()]

    rows = ws.read_rows("exports", ExportRow, config)
    hf_rows = {(r.config, r.split): r for r in rows if r.format == "hf"}
    assert hf_rows[("qa", "train")].rows == 3 and hf_rows[("qa", "train")].path == "export/qa/train"
    assert hf_rows[("raw", "train")].repo_id == "acme/demo"
    assert {(r.format, r.split, r.rows) for r in rows if r.format == "chat"} >= {("chat", "train", 3)}
    assert set(ws.manifest()["exports"].inputs) == {"dataset", "chunks", "documents"}

    for path in ws.root.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    assert "acme/demo" in caplog.text and TOKEN not in caplog.text


def test_stage_without_push_and_freshness(tmp_path: Path, corpus: Any) -> None:
    config = DoctuneConfig()
    ws = _workspace(tmp_path, config, corpus)
    hub = FakeHub()
    result = export_stage.run(config, ws, progress=False, hub_client=hub)
    assert hub.calls == [] and result.stats["pushed_to"] is None
    assert all(r.repo_id is None for r in ws.read_rows("exports", ExportRow, config))
    assert ws.freshness("exports", config) == "fresh"

    items = corpus[0][:2]
    ws.start_run("curate", config).write_artifact("dataset", items, DatasetItem, inputs=["chunks"])
    assert "dataset" in ws.freshness("exports", config)
    export_stage.run(config, ws, progress=False)
    assert datasets.load_from_disk(result.outputs["qa"])["train"].num_rows == 2
    assert list(datasets.load_from_disk(result.outputs["qa"])) == ["train", "eval"]  # old splits are gone
    assert sorted(p.name for p in (ws.root / "export" / "alpaca").iterdir()) == [MARKER, "eval.jsonl", "train.jsonl"]


def test_stage_push_failure_is_recorded_without_token(
    tmp_path: Path, corpus: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_TOKEN", TOKEN)
    config = DoctuneConfig(export=ExportConfig(token_env="MY_TOKEN"))
    ws = _workspace(tmp_path, config, corpus)
    with pytest.raises(PushError) as info:
        export_stage.run(config, ws, push_to="acme/x", progress=False, hub_client=FakeHub(fail=True))
    assert TOKEN not in str(info.value)
    assert ws.manifest()["exports"].errors[0]["repo_id"] == "acme/x"
    for path in ws.root.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_stage_refuses_a_missing_dataset(tmp_path: Path) -> None:
    with pytest.raises(StaleArtifactError, match="dataset"):
        export_stage.run(DoctuneConfig(), Workspace(tmp_path), progress=False)


# --------------------------------------------------------------------------- only what doctune created is replaced


def _user_data(path: Path) -> Path:
    """A user's folder (not doctune's) that happens to hold a ``qa/`` folder with a precious file."""
    (path / "qa").mkdir(parents=True)
    (path / "qa" / "precious.txt").write_text("keep me", encoding="utf-8")
    return path


def test_stage_refuses_an_out_dir_it_did_not_create(tmp_path: Path, corpus: Any) -> None:
    user_data = _user_data(tmp_path / "home" / "data")  # absolute, outside the workspace
    config = DoctuneConfig(export=ExportConfig(out_dir=str(user_data)))
    ws = _workspace(tmp_path, config, corpus)
    with pytest.raises(ConfigError, match="refusing to replace") as info:
        export_stage.run(config, ws, progress=False)
    assert str(user_data) in str(info.value) and "export.out_dir" in str(info.value)
    assert (user_data / "qa" / "precious.txt").read_text(encoding="utf-8") == "keep me"
    assert sorted(p.name for p in user_data.rglob("*")) == ["precious.txt", "qa"]  # nothing written either
    assert "exports" not in ws.manifest()


def test_stage_replaces_its_own_export_outside_the_workspace(tmp_path: Path, corpus: Any) -> None:
    out = tmp_path / "elsewhere" / "export"  # absolute, outside the workspace, created by doctune
    config = DoctuneConfig(export=ExportConfig(out_dir=str(out)))
    ws = _workspace(tmp_path, config, corpus)
    export_stage.run(config, ws, progress=False)
    for folder in (out, out / "qa", out / "chunks", out / "raw", out / "chat", out / "alpaca"):
        assert (folder / MARKER).is_file(), folder
    assert str(tmp_path) not in (out / MARKER).read_text(encoding="utf-8")
    (out / "qa" / "stale.arrow").write_bytes(b"old")

    ws.start_run("curate", config).write_artifact("dataset", corpus[0][:2], DatasetItem, inputs=["chunks"])
    result = export_stage.run(config, ws, progress=False)  # a re-export replaces doctune's own folders
    qa = datasets.load_from_disk(result.outputs["qa"])  # the marker inside does not disturb loading
    assert list(qa) == ["train", "eval"] and qa["train"].num_rows == 2
    assert not (out / "qa" / "stale.arrow").exists() and (out / "qa" / MARKER).is_file()
    assert result.outputs["card"] == str(out / "README.md") and "exports" in ws.manifest()

    # a folder of the user's inside doctune's export folder is refused, and left alone
    (out / "chat").rename(tmp_path / "old-chat")
    _user_data(out / "chat")
    with pytest.raises(ConfigError, match="refusing to replace"):
        export_stage.run(config, ws, progress=False)
    assert (out / "chat" / "qa" / "precious.txt").is_file()


def test_cli_export_into_a_user_folder_fails_with_one_line(
    tmp_path: Path, corpus: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no doctune.yaml here: the defaults
    user_data = _user_data(tmp_path / "home" / "data")
    ws = _workspace(tmp_path, DoctuneConfig(), corpus)
    res = CliRunner().invoke(app, ["--workspace", str(ws.root), "export", "--set", f"export.out_dir={user_data}"])
    assert res.exit_code == 1, res.output
    errors = [line for line in res.output.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("error:") and str(user_data) in errors[0], res.output
    assert "Traceback" not in res.output
    assert (user_data / "qa" / "precious.txt").read_text(encoding="utf-8") == "keep me"
