"""`udriver new NAME --pci VVVV:DDDD [--class CCSSPP] [--with-c]`."""

from __future__ import annotations

import argparse

from ..toolchain import new_driver

HELP = "create a driver project from the template"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="driver name; also the Python module name (e.g. acme)")
    p.add_argument("--pci", required=True, metavar="VVVV:DDDD", help="PCI vendor:device ID")
    p.add_argument("--class", dest="class_code", metavar="CCSSPP",
                   help="also require this PCI class code (base, sub, prog-if)")
    p.add_argument("--with-c", action="store_true",
                   help="add a C part (cffi, abi3) that uses the udriver C ABI table")
    p.add_argument("--dir", default=".", help="create NAME/ inside this directory (default: .)")


def main(args: argparse.Namespace) -> int:
    made = new_driver(args.name, args.pci, class_code=args.class_code, with_c=args.with_c,
                      directory=args.dir)
    print(f"created {made.path} ({len(made.files)} files) for {made.pattern}")
    print(f"next: cd {made.path} && udriver build")
    return 0
