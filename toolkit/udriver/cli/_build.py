"""`udriver build [PATH]`: write a checked wheel and .deb into PATH/dist/."""

from __future__ import annotations

import argparse

from ..toolchain import build_project
from . import env_option

HELP = "build a driver's wheel and .deb into dist/ (reproducible, checked)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", default=".", help="the driver project (default: .)")
    env_option(p, "--out-dir", "-o", env="UDRIVER_DIST_DIR",
               help="write here instead of PATH/dist/")
    p.add_argument("--no-deb", action="store_true", help="build only the wheel")


def main(args: argparse.Namespace) -> int:
    res = build_project(args.path, out_dir=args.out_dir, deb=not args.no_deb)
    for name, checks in res.checks.items():
        for c in checks:
            print(f"{name}: {c.line()}")
    for f in (res.wheel, res.deb):
        if f is not None:
            print(f"built {f}")
    return 0
