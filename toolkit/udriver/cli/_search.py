"""`udriver search QUERY`: find drivers by PCI ID (VVVV, VVVV:DDDD, modalias) or name."""

from __future__ import annotations

import argparse

from ..client import is_device_query
from ._clientopts import add_client_options, devices, make_client, print_json

__all__ = ["HELP", "add_arguments", "main"]

HELP = "search the repositories by PCI ID (1234, 1234:11e8, a modalias) or driver name"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", help="VVVV, VVVV:DDDD, pci:... modalias, or text in the name")
    add_client_options(p)


def main(args: argparse.Namespace) -> int:
    client = make_client(args)
    # Only a text search looks at this machine's devices (their indexes); reading sysfs
    # and pci.ids for an ID search was a third of `udriver search VVVV:DDDD --offline`.
    hits = client.search(args.query, None if is_device_query(args.query) else devices(args))
    if args.json:
        print_json([e.to_dict() for e in hits])
        return 0
    if not hits:
        print(f"no driver found for {args.query!r}")
        return 1
    for e in hits:
        print(f"{e.driver} {e.version}  {e.package}  [{e.repo}]  {' '.join(e.modaliases)}")
    return 0
