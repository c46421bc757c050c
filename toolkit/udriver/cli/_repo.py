"""`udriver repo add|list|remove`: configure signed driver repositories."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import env_option
from ._clientopts import add_json_option, print_json

__all__ = ["HELP", "add_arguments", "main"]

HELP = "configure driver repositories (add, list, remove)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="repo_command", metavar="SUBCOMMAND")
    sub.required = True
    add = sub.add_parser("add", help="add a repository, trusting the given TUF root")
    add.add_argument("name", help="local name, e.g. main")
    add.add_argument("url", help="base URL of the repository (serves metadata/ and targets/)")
    env_option(add, "--root", env="UDRIVER_REPO_ROOT", required=False, metavar="ROOT.json",
               help="the repository's trusted root metadata (keys/root.json on its server)")
    add.add_argument("--auto-install", action="store_true",
                     help="install drivers from this repository for new devices automatically")
    env_option(add, "--ca-bundle", env="UDRIVER_CA_BUNDLE", metavar="FILE",
               help="CA bundle for HTTPS instead of the system's")
    add_json_option(add)
    lst = sub.add_parser("list", help="list configured repositories")
    add_json_option(lst)
    rm = sub.add_parser("remove", help="forget a repository and its cached metadata")
    rm.add_argument("name")
    add_json_option(rm)


def main(args: argparse.Namespace) -> int:
    from ..client import add_repo, list_repos, remove_repo

    if args.repo_command == "add":
        if not args.root:
            from ..errors import ConfigError
            raise ConfigError("`--root ROOT.json` is required: the repository's trusted root")
        cfg = add_repo(args.name, args.url, Path(args.root), auto_install=args.auto_install,
                       ca_bundle=args.ca_bundle)
        if args.json:
            print_json({"name": cfg.name, "url": cfg.display_url, "auto_install": cfg.auto_install,
                        "ca_bundle": cfg.ca_bundle})
            return 0
        auto = " (auto-install)" if cfg.auto_install else ""
        print(f"added repository {cfg.name} at {cfg.display_url}{auto}")
        return 0
    if args.repo_command == "list":
        repos = list_repos()
        if args.json:
            print_json([{"name": r.name, "url": r.display_url, "auto_install": r.auto_install,
                         "ca_bundle": r.ca_bundle} for r in repos])
            return 0
        if not repos:
            print("no repositories configured")
            return 0
        w = max(len(r.name) for r in repos)
        for r in repos:
            print(f"{r.name:{w}}  {r.display_url}{'  auto-install' if r.auto_install else ''}")
        return 0
    remove_repo(args.name)
    if args.json:
        print_json({"removed": args.name})
    else:
        print(f"removed repository {args.name}")
    return 0
