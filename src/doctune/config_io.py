"""Reading, overriding, masking and writing the configuration (``doctune.config`` holds the tree itself)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from doctune.config import _ENV_REF, DEFAULT_CONFIG_FILE, ConfigError, DoctuneConfig, ModelSpec
from doctune.config_execution import ExecutionConfig


def _public(model: BaseModel) -> dict[str, Any]:
    data = model.model_dump(mode="json")
    _mask_secrets(model, data)
    return _home_relative(data)


def _home_relative(value: Any) -> Any:
    """``value`` with every string under the home folder written ``~/...`` (saved configs hold no home path)."""
    if isinstance(value, dict):
        return {k: _home_relative(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_home_relative(v) for v in value]
    if isinstance(value, str):
        return home_relative(value)
    return value


def home_relative(text: str) -> str:
    """``text`` with a leading home-folder path replaced by ``~`` (``/home/me/data`` -> ``~/data``)."""
    home = str(Path.home()).rstrip("/")
    if home and (text == home or text.startswith(home + "/")):
        return "~" + text[len(home) :]
    return text


def _output_affecting(model: BaseModel) -> dict[str, Any]:
    """Like ``_public`` but without model specs' operational fields (concurrency, rate, timeout, keys)."""
    data = _public(model)
    _drop_operational(model, data)
    return data


def _drop_operational(model: BaseModel, data: dict[str, Any]) -> None:
    if isinstance(model, ModelSpec):
        for name in ModelSpec.OPERATIONAL_FIELDS:
            data.pop(name, None)
        data["base_url"] = model.base_url  # a changed endpoint changes the output (hashed, never stored)
        return
    for name in type(model).model_fields:
        value = model.__dict__[name]
        if isinstance(value, BaseModel):
            _drop_operational(value, data[name])


def _mask_secrets(model: BaseModel, data: dict[str, Any]) -> None:
    """Secrets become ``***``; an endpoint URL (it may hold credentials or internal host names) its label."""
    if isinstance(model, ModelSpec) and model.base_url:
        data["base_url"] = f"<{model.endpoint_label()}>"
    if isinstance(model, ExecutionConfig):
        data["address"] = model.address_label()
    for name in type(model).model_fields:
        value = model.__dict__[name]
        if isinstance(value, SecretStr):
            data[name] = "***"
        elif isinstance(value, BaseModel):
            _mask_secrets(value, data[name])


def _expand_secret(value: Any, where: str) -> Any:
    if not isinstance(value, str):
        return value
    m = _ENV_REF.match(value.strip())
    if not m:
        return value
    var = m.group(1)
    if var not in os.environ:
        raise ConfigError(f"{where}: environment variable {var} is not set")
    return os.environ[var]


def _expand_secrets(raw: dict[str, Any]) -> None:
    models = raw.get("models")
    if isinstance(models, dict):
        for role, spec in models.items():
            if isinstance(spec, dict) and "api_key" in spec:
                spec["api_key"] = _expand_secret(spec["api_key"], f"models.{role}.api_key")


def _parse_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``dotted.key=value`` overrides (values parsed as YAML scalars/lists)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected dotted.key=value")
        key, value = item.split("=", 1)
        node = raw
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part} is not a section")
        node[parts[-1]] = _parse_scalar(value)
    return raw


def format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            lines.append(f"  {loc}: unknown key")
        else:
            lines.append(f"  {loc}: {e['msg']}")
    return "\n".join(lines)


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None, workspace: str | Path | None = None
) -> DoctuneConfig:
    """Load, override and validate a config. A missing default file means all defaults. ``workspace`` (the
    ``--workspace`` option) is a path taken as it is, never parsed as YAML."""
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None or Path(DEFAULT_CONFIG_FILE).exists():
        cfg_path = Path(path if path is not None else DEFAULT_CONFIG_FILE)
        source = str(cfg_path)
        if not cfg_path.exists():
            raise ConfigError(f"{cfg_path}: config file not found")
        try:
            loaded = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{cfg_path}: not valid YAML: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{cfg_path}: top level must be a mapping, got {type(loaded).__name__}")
        raw = loaded
    apply_overrides(raw, overrides or [])
    if workspace is not None:
        raw["workspace"] = str(workspace)
    _expand_secrets(raw)
    try:
        return DoctuneConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from exc


def dump_config(config: DoctuneConfig) -> str:
    """YAML of the resolved config with secrets masked."""
    return yaml.safe_dump(config.masked(), sort_keys=False)
