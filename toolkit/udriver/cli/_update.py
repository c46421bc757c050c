"""`udriver update`: install the newest compatible version of every installed driver.

`--dry-run` (`--list`) only says what would be updated, as `apt list --upgradable` does;
held drivers (`udriver hold`, and every `udriver rollback`) are shown and left alone.
"""

from __future__ import annotations

import argparse

from ..supervise import sync_udev_rules
from ._clientopts import add_client_options, make_client, print_json

__all__ = ["HELP", "add_arguments", "main"]

HELP = "update installed drivers to their newest compatible versions"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", "--list", dest="dry_run", action="store_true",
                   help="list the drivers that would be updated, and install nothing")
    add_client_options(p, sysfs=False)


def main(args: argparse.Namespace) -> int:
    client = make_client(args)
    pending = client.upgradable()
    held = [(inst, best) for inst, best in pending if inst.held]
    if args.dry_run:
        if args.json:
            print_json([{"driver": inst.driver, "current": inst.current, "available": best.version,
                         "repo": best.repo, "held": inst.held} for inst, best in pending])
            return 0
        if not pending:
            print("all drivers are up to date")
        for inst, best in pending:
            mark = "  (held: `udriver unhold` to allow)" if inst.held else ""
            print(f"{inst.driver} {inst.current} -> {best.version} from {best.repo}{mark}")
        return 0
    results = [client.install_entry(best) for inst, best in pending if not inst.held]
    if results:
        sync_udev_rules()
    if args.json:
        print_json([r.to_dict() for r in results])
        return 0
    if not results and not held:
        print("all drivers are up to date")
    for r in results:
        print(f"updated {r.driver} {r.previous} -> {r.version} from {r.repo}")
    for inst, best in held:
        print(f"kept {inst.driver} {inst.current} (held; {best.version} is available)")
    return 0
