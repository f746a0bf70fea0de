"""The installed `doctune` command runs with hub and library telemetry off, whatever starts it (not only make)."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points

from doctune.cli import TELEMETRY_OFF

PROBE = """
import os, sys
from doctune.cli import main
sys.argv = ["doctune", "--help"]
try:
    main()
except SystemExit:
    pass
import huggingface_hub.constants as hub
from mlflow.telemetry.utils import is_telemetry_disabled
import wandb.env
print("RESULT", hub.HF_HUB_DISABLE_TELEMETRY, is_telemetry_disabled(), wandb.env.error_reporting_enabled())
"""


def test_the_installed_command_switches_telemetry_off():
    [script] = [ep for ep in entry_points(group="console_scripts") if ep.name == "doctune"]
    assert script.value == "doctune.cli:main"  # what the `doctune` executable runs
    env = {k: v for k, v in os.environ.items() if k not in TELEMETRY_OFF and k not in ("CI", "PYTEST_CURRENT_TEST")}
    env.pop("HF_HUB_OFFLINE", None)
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
    result = next(line for line in out.stdout.splitlines() if line.startswith("RESULT"))
    assert result == "RESULT True True False", out.stdout + out.stderr


def test_importing_the_cli_loads_no_library_that_reads_telemetry_settings():
    code = "import sys, doctune.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in {0!r}))"
    libs = {"huggingface_hub", "transformers", "datasets", "mlflow", "wandb", "torch", "sentence_transformers"}
    out = subprocess.run([sys.executable, "-c", code.format(libs)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"  # so `main` sets the environment before any of them reads it
