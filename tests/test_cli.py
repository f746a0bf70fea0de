from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from doctune.cli import app

runner = CliRunner()
FAKE = ["--set", "models.generator.backend=fake", "--set", "models.generator.options.default_reply=A short summary."]


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def project(tmp_path, monkeypatch, examples_dir):
    """A working directory with a copy of the examples, a broken file and no config file."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(examples_dir, tmp_path / "docs")
    (tmp_path / "docs" / "broken.pdf").write_bytes(b"this is not a pdf")
    (tmp_path / "docs" / "empty.txt").write_bytes(b"")
    return tmp_path


def test_pipeline_spine_with_fake_generator(project):
    ws = project / "work"
    res = invoke("--workspace", str(ws), "ingest", "docs")
    assert res.exit_code == 0, res.output
    assert "broken.pdf" in res.output and "empty.txt" in res.output
    assert "documents ->" in res.output

    res = invoke("--workspace", str(ws), "summarize", *FAKE)
    assert res.exit_code == 0, res.output
    res = invoke("--workspace", str(ws), "chunk")
    assert res.exit_code == 0, res.output

    res = invoke("--workspace", str(ws), "status", "--json", *FAKE)
    assert res.exit_code == 0, res.output
    status = {a["name"]: a for a in json.loads(res.output)["artifacts"]}
    assert set(status) == {"documents", "speeches", "persons", "summaries", "chunks"}  # ingest lists plays (none)
    assert all(a["freshness"] == "fresh" for a in status.values()), status
    assert status["summaries"]["rows"] == status["documents"]["rows"] > 5
    assert status["chunks"]["rows"] >= status["documents"]["rows"]
    reasons = {e["source_path"].split("/")[-1]: e["reason"] for e in status["documents"]["errors"]}
    assert set(reasons) == {"broken.pdf", "empty.txt"}

    # a changed chunk setting makes chunks stale, and the human status says so
    res = invoke("--workspace", str(ws), "status", "--json", "--set", "chunk.max_chars=3000", *FAKE)
    status = {a["name"]: a for a in json.loads(res.output)["artifacts"]}
    assert status["chunks"]["freshness"] == "stale (config section chunk changed)"
    assert status["documents"]["freshness"] == "fresh"
    res = invoke("--workspace", str(ws), "status", "--set", "chunk.max_chars=3000", *FAKE)
    assert "stale" in res.output and "broken.pdf" in res.output


def test_preview_writes_nothing(project):
    ws = project / "work"
    invoke("--workspace", str(ws), "ingest", "docs")
    before = sorted(p.name for p in (ws / "artifacts").iterdir())
    res = invoke("--workspace", str(ws), "chunk", "--preview", "3", "--max-chars", "600", "--min-chars", "200")
    assert res.exit_code == 0, res.output
    assert res.output.count(" chars ") == 3
    assert "nothing written" in res.output
    assert sorted(p.name for p in (ws / "artifacts").iterdir()) == before


def test_stage_before_its_input_fails_clearly(project):
    res = invoke("--workspace", str(project / "w"), "chunk")
    assert res.exit_code == 1
    assert "run `doctune ingest` first" in res.output


def test_ingest_without_paths_uses_config_or_fails(project):
    res = invoke("--workspace", str(project / "w"), "ingest")
    assert res.exit_code == 1
    assert "nothing to ingest" in res.output
    (project / "doctune.yaml").write_text("ingest:\n  paths: [docs/md]\n")
    res = invoke("ingest")
    assert res.exit_code == 0, res.output
    assert (project / "doctune-work" / "manifest.json").exists()


def test_validate_good_and_bad(project):
    (project / "good.yaml").write_text("chunk: {min_chars: 100, max_chars: 900}\n")
    res = invoke("validate", "good.yaml")
    assert res.exit_code == 0 and "valid" in res.output and "max_chars: 900" in res.output
    (project / "bad.yaml").write_text("chunk: {min_chars: 100, max_charz: 900}\n")
    res = invoke("validate", "bad.yaml")
    assert res.exit_code == 1
    assert "chunk.max_charz: unknown key" in res.output
    (project / "badopt.yaml").write_text("models: {judge: {backend: local, options: {threads: 2}}}\n")
    res = invoke("validate", "badopt.yaml")
    assert res.exit_code == 1 and "threads" in res.output


def test_python_dash_m_entry_point(project):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "doctune", "--help"], capture_output=True, text=True, check=True)
    assert "ingest" in out.stdout and "summarize" in out.stdout


def test_generate_commands_and_status_outcomes(tmp_path, monkeypatch):
    from doctune.llm.fake import FakeBackend

    from genutil import build_workspace, qa_reply

    calls = {"n": 0}

    def flaky(messages):
        calls["n"] += 1
        return "I'm sorry, I cannot do that." if calls["n"] == 2 else qa_reply(messages)

    FakeBackend.register_script("cli-flaky", flaky)
    monkeypatch.chdir(tmp_path)
    build_workspace(tmp_path / "ws", {"models.generator.model": "cli-flaky"})  # summaries made by this generator
    fake = ["--set", "models.generator.backend=fake", "--set", "models.generator.model=cli-flaky"]
    fake += [
        "--set",
        "models.generator.max_concurrency=1",
        "--set",
        "chunk.min_chars=120",
        "--set",
        "chunk.max_chars=260",
        "--set",
        "generate.llm_verifier=false",  # the embedded judge's check has its own tests
    ]
    res = invoke("--workspace", "ws", "generate", "qa", *fake)
    assert res.exit_code == 0, res.output
    assert "outcomes: items" in res.output and "refused 1" in res.output
    assert "items with verified citations: 100.0%" in res.output
    res = invoke("--workspace", "ws", "status", *fake)
    assert "requests by outcome: items" in res.output and "refused 1" in res.output
    assert "refused: the model refused" in res.output
    res = invoke(
        "--workspace",
        "ws",
        "generate",
        "rephrase",
        *fake,
        "--set",
        "models.rephraser.backend=fake",
        "--set",
        'models.rephraser.options.default_reply=\'{"question": "Reworded?", "answer": "Yes."}\'',
    )
    assert res.exit_code == 0, res.output
    res = invoke("--workspace", "ws", "status", "--json", *fake)
    names = {a["name"] for a in json.loads(res.output)["artifacts"]}
    assert {"qa", "qa_outcomes", "rephrased", "rephrased_outcomes"} <= names


def test_generate_refuses_stale_chunks(tmp_path, monkeypatch):
    from genutil import build_workspace

    monkeypatch.chdir(tmp_path)
    build_workspace(tmp_path / "ws")
    res = invoke("--workspace", "ws", "generate", "qa", "--set", "models.generator.backend=fake")
    assert res.exit_code == 1
    assert "'chunks' is stale (config section chunk changed): run `doctune chunk` first" in res.output


# -- errors: one line naming what and why, a non-zero exit; -v adds the traceback ----------------------------------


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def test_run_stops_at_the_first_stage_that_yields_nothing(project):
    """Documents whose generation yields no item: `doctune run` says where it stopped and why (it used to die in
    training with a traceback)."""
    (project / "doctune.yaml").write_text(
        "ingest: {paths: [docs/txt]}\n"
        "models:\n"
        "  generator: {backend: fake, options: {default_reply: '{\"items\": []}'}}\n"
        "  embedder: {backend: fake}\n"
        "generate: {llm_verifier: false}\n"
    )
    res = invoke("--workspace", "work", "run")
    assert res.exit_code == 1, res.output
    [line] = _error_lines(res.output)
    assert line.startswith("error: doctune run stopped at generate qa: it produced no items")
    assert "no_items" in line and "Traceback" not in res.output
    assert not (project / "work" / "artifacts" / "dedup.parquet").exists()  # nothing ran after it
    status = json.loads(invoke("--workspace", "work", "status", "--json").output)
    assert {a["name"] for a in status["artifacts"]} >= {"qa", "qa_outcomes"}  # what it did is recorded


def test_an_unexpected_error_is_one_line_and_verbose_shows_the_traceback(project, monkeypatch):
    from doctune.stages import chunk

    def broken(*args, **kwargs):
        raise RuntimeError("disk full\nmore detail on a second line")

    invoke("--workspace", "work", "ingest", "docs/txt")
    monkeypatch.setattr(chunk, "run", broken)
    res = invoke("--workspace", "work", "chunk")
    assert res.exit_code == 1
    assert _error_lines(res.output) == ["error: chunk: RuntimeError: disk full (run with -v for the traceback)"]
    assert "Traceback" not in res.output
    res = invoke("-v", "--workspace", "work", "chunk")
    assert res.exit_code == 1 and "Traceback" in res.output and "error: chunk: RuntimeError: disk full" in res.output


def test_ingest_that_yields_no_document_fails(project):
    res = invoke("--workspace", "work", "ingest", "docs/broken.pdf", "docs/empty.txt")
    assert res.exit_code == 1
    [line] = _error_lines(res.output)
    assert "ingest: no document could be read" in line and "broken.pdf" in line and "empty.txt: empty file" in line
    assert not (project / "work" / "manifest.json").exists()
    (project / "docs" / "notes").mkdir()
    res = invoke("--workspace", "work", "ingest", "docs/notes")
    assert res.exit_code == 1 and "no file with a supported extension" in res.output


def test_workspace_is_a_path_not_yaml(project):
    res = invoke("--workspace", "2024", "ingest", "docs/txt")
    assert res.exit_code == 0, res.output
    assert (project / "2024" / "manifest.json").exists()
    res = invoke("--set", "project=1984", "--workspace", "2024", "status")
    assert res.exit_code == 0, res.output
