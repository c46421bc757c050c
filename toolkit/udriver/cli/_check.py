"""`udriver check ARTIFACT... [--strict]`: one PASSED/FAILED line per check."""

from __future__ import annotations

import argparse

from ..toolchain import check_artifact

HELP = "check built driver wheels and debs (exit 1 if any check fails)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("artifacts", nargs="+", metavar="ARTIFACT", help=".whl or .deb files")
    p.add_argument("--strict", action="store_true",
                   help="also run lintian on debs, and fail when the driver source is unknown")
    p.add_argument("--source", metavar="DIR",
                   help="the driver project, to compare with its pyproject.toml "
                        "(default: the project whose dist/ holds the artifact)")


def main(args: argparse.Namespace) -> int:
    failed = 0
    many = len(args.artifacts) > 1
    for a in args.artifacts:
        for c in check_artifact(a, source=args.source, strict=args.strict):
            print((f"{a}: " if many else "") + c.line())
            failed += not c.ok
    return 1 if failed else 0
