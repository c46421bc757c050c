"""`udriver history [DRIVER]`: what was installed, rolled back, held or removed, and why."""

from __future__ import annotations

import argparse

from ._clientopts import add_json_option, print_json

__all__ = ["HELP", "add_arguments", "main"]

HELP = "show what was installed, updated, rolled back, held or removed, when and why"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("driver", nargs="?", help="only this driver's changes")
    add_json_option(p)


def main(args: argparse.Namespace) -> int:
    from ..client import read_history

    entries = read_history(args.driver)
    if args.json:
        print_json(entries)
        return 0
    if not entries:
        print("no changes recorded" + (f" for {args.driver}" if args.driver else ""))
        return 0
    for e in entries:
        change = " -> ".join(str(v) for v in (e.get("from"), e.get("to")) if v)
        where = f" from {e['repo']}" if e.get("repo") else ""
        why = f"  ({e['reason']})" if e.get("reason") else ""
        print(f"{e.get('time')}  {e.get('action')!s:<9} {e.get('driver')} {change}{where}{why}")
    return 0
