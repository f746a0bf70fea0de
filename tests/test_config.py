from __future__ import annotations

import pytest
import yaml

from doctune.config import ConfigError, DoctuneConfig, dump_config, load_config


def write(tmp_path, data) -> str:
    path = tmp_path / "doctune.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return str(path)


def test_defaults_when_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config()
    assert cfg == DoctuneConfig()
    assert cfg.models.generator.backend == "local"
    assert cfg.workspace == "doctune-work"


def test_default_file_in_working_directory_is_used(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"chunk": {"min_chars": 10, "max_chars": 20}})
    assert load_config().chunk.max_chars == 20


def test_unknown_key_is_an_error_naming_the_key(tmp_path):
    path = write(tmp_path, {"chunk": {"min_chars": 10, "max_chars": 20, "maxchars": 5}})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "chunk.maxchars: unknown key" in str(info.value)
    assert path in str(info.value)


def test_unknown_role_is_an_error(tmp_path):
    path = write(tmp_path, {"models": {"grader": {"backend": "local"}}})
    with pytest.raises(ConfigError, match="models.grader: unknown key"):
        load_config(path)


def test_bad_value_and_bounds(tmp_path):
    with pytest.raises(ConfigError, match="chunk.min_chars"):
        load_config(write(tmp_path, {"chunk": {"min_chars": "many"}}))
    with pytest.raises(ConfigError, match="max_chars"):
        load_config(write(tmp_path, {"chunk": {"min_chars": 500, "max_chars": 100}}))


def test_invalid_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "chunk: [unclosed"))
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))


def test_set_overrides_are_validated_like_the_file(tmp_path):
    path = write(tmp_path, {"chunk": {"min_chars": 10, "max_chars": 20}})
    cfg = load_config(path, ["chunk.max_chars=300", "models.judge.backend=fake", "ingest.paths=[a, b]"])
    assert cfg.chunk.max_chars == 300
    assert cfg.models.judge.backend == "fake"
    assert cfg.ingest.paths == ["a", "b"]
    with pytest.raises(ConfigError, match="chunk.nope: unknown key"):
        load_config(path, ["chunk.nope=1"])
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        load_config(path, ["chunk.max_chars"])


def test_env_expansion_only_for_secrets_and_masked_in_dump(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-secret-123")
    monkeypatch.setenv("MY_MODEL", "should-not-expand")
    path = write(
        tmp_path,
        {"models": {"generator": {"backend": "openai", "model": "$MY_MODEL", "api_key": "${MY_KEY}"}}},
    )
    cfg = load_config(path)
    assert cfg.models.generator.resolved_api_key() == "sk-secret-123"
    assert cfg.models.generator.model == "$MY_MODEL"  # not a secret field: taken literally
    dumped = dump_config(cfg)
    assert "sk-secret-123" not in dumped
    assert "***" in dumped


def test_missing_secret_env_var_is_an_error(tmp_path, monkeypatch):
    monkeypatch.delenv("ABSENT_KEY", raising=False)
    path = write(tmp_path, {"models": {"generator": {"backend": "openai", "model": "m", "api_key": "$ABSENT_KEY"}}})
    with pytest.raises(ConfigError, match="ABSENT_KEY is not set"):
        load_config(path)


def test_api_key_env_is_read_at_call_time(monkeypatch):
    cfg = DoctuneConfig.model_validate({"models": {"judge": {"backend": "openai", "model": "m", "api_key_env": "K"}}})
    monkeypatch.setenv("K", "v1")
    assert cfg.models.judge.resolved_api_key() == "v1"
    assert "v1" not in dump_config(cfg)


def test_section_hash_tracks_only_named_sections():
    a = DoctuneConfig()
    b = DoctuneConfig.model_validate({"chunk": {"max_chars": 999}})
    assert a.section_hash("ingest") == b.section_hash("ingest")
    assert a.section_hash("chunk") != b.section_hash("chunk")


def test_repo_config_is_valid(examples_dir):
    cfg = load_config(examples_dir.parent / "doctune.yaml")
    assert cfg.ingest.paths[0] == "examples/md"
