"""Execution sandbox for generated code (network/PID namespaces, rlimits, timeouts) and source mutations."""

from doctune.sandbox.mutate import MUTANT_KINDS, Mutant, mutants, mutation_caught
from doctune.sandbox.runner import (
    SandboxLimits,
    SandboxResult,
    SandboxUnavailable,
    isolation_available,
    reset_isolation_probe,
    run_python_code,
    run_python_script,
    run_python_tests,
)

__all__ = [
    "MUTANT_KINDS",
    "Mutant",
    "SandboxLimits",
    "SandboxResult",
    "SandboxUnavailable",
    "isolation_available",
    "mutants",
    "mutation_caught",
    "reset_isolation_probe",
    "run_python_code",
    "run_python_script",
    "run_python_tests",
]
