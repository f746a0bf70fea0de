"""Config section ``code``: reading code repositories into ``code_units`` (``doctune ingest --as code``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: the languages ``doctune ingest --as code`` parses
CODE_LANGUAGES = ("python", "javascript", "typescript", "go")


class CodeConfig(BaseModel):
    """Which files of a code repository become ``code_units``."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    include_tests: bool = Field(
        True,
        description="Ingest test files (test_*.py, *_test.py, tests/ or test/ folders, *_test.go, *.test.js/ts, "
        "*.spec.js/ts); their units have role test.",
    )
    include_vendored: bool = Field(
        False,
        description="Ingest vendored files (under vendor/, third_party/, node_modules/, site-packages); left out "
        "and counted by default: they are someone else's code.",
    )
    include_generated: bool = Field(
        False,
        description='Ingest generated files ("Code generated ... DO NOT EDIT", "@generated", *_pb2.py, *.min.js); '
        "left out and counted by default.",
    )
    max_file_bytes: int = Field(
        500_000, ge=1, description="Files larger than this many bytes are skipped, each with a reason."
    )
    languages: list[str] = Field(
        default_factory=lambda: list(CODE_LANGUAGES),
        description="Languages to ingest (python, javascript, typescript, go); files of the others are counted "
        "and left out.",
    )

    exclude: list[str] = Field(
        default_factory=list,
        description="Glob patterns of repository paths to leave out (e.g. 'examples/*', 'docs/*'); counted.",
    )

    # -- doctune generate code ---------------------------------------------------------------
    max_units: int = Field(
        40,
        ge=1,
        description="Units `generate code` makes examples from: Python functions and methods of source files, "
        "module-level functions (whose calls can be recorded) first, evenly spaced over the repository.",
    )
    kinds: list[Literal["docstring_to_code", "explain", "write_test", "fix_bug"]] = Field(
        default_factory=lambda: ["docstring_to_code", "explain", "write_test", "fix_bug"],
        description="Example kinds: docstring_to_code (signature and docstring -> the unit's code), explain (the code "
        "without docs -> an explanation), write_test (-> a test that passes on the original and fails on a "
        "mutant), fix_bug (a mutated copy and the failing test -> the original).",
    )
    max_calls: int = Field(6, ge=1, description="Recorded calls a generated characterization test asserts, at most.")
    model_calls: bool = Field(
        True, description="Ask the generator model for example calls too (besides doctests and the signature)."
    )
    max_mutants: int = Field(5, ge=1, description="Mutants tried per unit (fix_bug and the write_test check).")
    fix_examples_per_unit: int = Field(2, ge=0, description="fix_bug examples per unit, from its caught mutants.")
    repository_tests: bool = Field(
        True, description="Also judge a unit with the repository's own test files that name it (when they pass)."
    )
    python: str | None = Field(
        None,
        description="The repository's interpreter for sandboxed runs (a virtual environment's python with the "
        "repository's dependencies and pytest); default: the one running doctune.",
    )
    workers: int | None = Field(
        None, ge=1, description="Units worked on at once (their sandbox runs in parallel); default: the CPU cores."
    )
    timeout_s: float = Field(20.0, gt=0, description="Wall-clock limit of one sandboxed run, in seconds.")
    memory_mb: int = Field(2048, ge=64, description="Address-space limit of one sandboxed run, in MiB.")
    explanations: Literal["auto", "docstring", "model"] = Field(
        "auto",
        description="Who writes explanations: docstring (assembled from the unit's own facts, right by "
        "construction), model (the generator, then checked), auto (model for endpoints and one_call, docstring for "
        "the embedded small model).",
    )
    judge_explanations: bool = Field(
        False,
        description="Also ask the judge model about model-written explanations. The judge must pass its own check "
        "first (right on a unit's own facts, wrong on another unit's); when it fails, no model explanation is used.",
    )
    eval_share: float = Field(
        0.25, ge=0, le=1, description="Share of tested units held out for evaluation (whole units, by hash and seed)."
    )
    seed: int = Field(0, description="Seed of the held-out choice.")

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(CODE_LANGUAGES))
        if unknown:
            raise ValueError(f"unknown language(s) {', '.join(unknown)}; expected some of {', '.join(CODE_LANGUAGES)}")
        return value
