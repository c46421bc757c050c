"""`udriver unhold DRIVER...`: let `udriver update` upgrade held drivers again."""

from __future__ import annotations

import argparse

from . import _hold

__all__ = ["HELP", "add_arguments", "main"]

HELP = "release held drivers (udriver update upgrades them again)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    _hold.add_arguments(p)


def main(args: argparse.Namespace) -> int:
    return _hold.main(args, held=False)
