"""`udriver check ARTIFACT... [--strict] [--json]`: one PASSED/FAILED line per check."""

from __future__ import annotations

import argparse
import json
import os

from ..errors import ConfigError
from ..toolchain import check_artifact
from . import env_option

HELP = "check built driver wheels and debs (exit 1 if any check fails)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("artifacts", nargs="+", metavar="ARTIFACT", help=".whl or .deb files")
    p.add_argument("--strict", action="store_true",
                   help="also run lintian on debs, and fail when the driver source is unknown")
    env_option(p, "--source", env="UDRIVER_SOURCE", metavar="DIR",
               help="the driver project, to compare with its pyproject.toml "
                    "(default: the project whose dist/ holds the artifact)")
    p.add_argument("--json", action="store_true",
                   help="print a JSON array, one object per check, instead of PASSED/FAILED lines")


def main(args: argparse.Namespace) -> int:
    """Check every artifact; a file that is not there is a mistake, not a check result.

    Raises:
        ConfigError: an ARTIFACT does not exist or is not a file (before any check runs).
    """
    missing = [a for a in args.artifacts if not os.path.isfile(a)]
    if missing:
        raise ConfigError(f"no such file: {', '.join(map(repr, missing))}")
    failed = 0
    many = len(args.artifacts) > 1
    rows: list[dict[str, object]] = []
    for a in args.artifacts:
        for c in check_artifact(a, source=args.source, strict=args.strict):
            failed += not c.ok
            if args.json:  # one array, as every other `--json` prints
                rows.append({"artifact": a, "check": c.name, "ok": c.ok, "detail": c.detail})
            else:
                print((f"{a}: " if many else "") + c.line())
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
    return 1 if failed else 0
