"""`udriver-repo` command line (skeleton)."""

from __future__ import annotations

import sys

__all__ = ["main", "run"]


def main(argv: list[str] | None = None) -> int:
    print("udriver-repo: not implemented yet", file=sys.stderr)
    return 1


def run() -> None:
    sys.exit(main())
