"""`udriver show DRIVER`: published versions, ID table and what is installed."""

from __future__ import annotations

import argparse

from ..abi import format_abi, is_compatible
from ._clientopts import add_client_options, devices, make_client, print_json

__all__ = ["HELP", "add_arguments", "main"]

HELP = "show a driver: published versions, ABI, ID table, installed versions"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("driver", help="driver or package name")
    add_client_options(p)


def main(args: argparse.Namespace) -> int:
    client = make_client(args)
    versions, inst = client.show(args.driver, devices(args))
    latest = versions[-1]
    if args.json:
        print_json({"driver": latest.driver, "package": latest.package,
                    "versions": [e.to_dict() for e in versions],
                    "installed": None if inst is None else {
                        "current": inst.current, "previous": inst.previous,
                        "versions": inst.versions}})
        return 0
    print(f"driver:    {latest.driver}")
    print(f"package:   {latest.package}")
    print("versions:  " + ", ".join(
        f"{e.version} (ABI {format_abi(e.abi)}{'' if is_compatible(e.abi) else ', incompatible'})"
        for e in versions))
    print("devices:   " + "\n           ".join(latest.modaliases))
    files = ", ".join(f"{k}: {v}" for k, v in sorted(latest.files.items()))
    print(f"files:     {files}")
    print(f"repo:      {latest.repo}")
    if inst is None:
        print("installed: no")
    else:
        prev = f" (previous: {inst.previous})" if inst.previous else ""
        print(f"installed: {inst.current}{prev}")
    return 0
