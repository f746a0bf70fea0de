"""Config section ``code``: reading code repositories into ``code_units`` (``doctune ingest --as code``)."""

from __future__ import annotations

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

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(CODE_LANGUAGES))
        if unknown:
            raise ValueError(f"unknown language(s) {', '.join(unknown)}; expected some of {', '.join(CODE_LANGUAGES)}")
        return value
