"""`udriver update`: install the newest compatible version of every installed driver."""

from __future__ import annotations

import argparse

from ..client._cli import add_client_options, make_client, print_json, sync_udev_rules

__all__ = ["HELP", "add_arguments", "main"]

HELP = "update installed drivers to their newest compatible versions"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_client_options(p, sysfs=False)


def main(args: argparse.Namespace) -> int:
    results = make_client(args).update()
    if results:
        sync_udev_rules()
    if args.json:
        print_json([r.to_dict() for r in results])
        return 0
    if not results:
        print("all drivers are up to date")
    for r in results:
        print(f"updated {r.driver} {r.previous} -> {r.version} from {r.repo}")
    return 0
