"""The ``doctune`` command line: parses arguments and calls library functions, nothing more.

One module per command group; importing them registers their commands on ``app``."""

from doctune.cli import core, curate, generate, models, train  # noqa: F401  (registration)
from doctune.cli.common import app


def main() -> None:
    app()


__all__ = ["app", "main"]
