"""The TUF conformance suite's client-under-test CLI, on udriver's client code.

Protocol (theupdateframework/tuf-conformance, CLIENT-CLI.md):

    python -m udriver.client.conformance --metadata-dir DIR init TRUSTED_ROOT
    python -m udriver.client.conformance --metadata-dir DIR --metadata-url URL refresh
    python -m udriver.client.conformance --metadata-dir DIR --metadata-url URL \\
        --target-name PATH --target-base-url URL --target-dir DIR download

Exit status 0 on success, 1 on any failure (the reason goes to stderr). `init` only
copies the root (no requests, no checks, as the protocol says); `refresh` and
`download` go through `RemoteRepo`, the same fetcher, updater and error mapping as
`udriver install`. Downloads are cached: a target already present with matching
hashes is not fetched again.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import UdriverError
from ._config import RepoConfig
from ._remote import RemoteRepo

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m udriver.client.conformance",
                                description="TUF conformance client-under-test for udriver")
    p.add_argument("--metadata-dir", required=True, type=Path)
    p.add_argument("--metadata-url")
    p.add_argument("--target-name")
    p.add_argument("--target-base-url")
    p.add_argument("--target-dir", type=Path)
    sub = p.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init")
    init.add_argument("trusted_root", type=Path)
    sub.add_parser("refresh")
    sub.add_parser("download")
    return p


def _remote(args: argparse.Namespace, need_targets: bool) -> RemoteRepo:
    if not args.metadata_url:
        raise SystemExit("error: --metadata-url is required")
    if need_targets and not (args.target_name and args.target_base_url and args.target_dir):
        raise SystemExit("error: download needs --target-name, --target-base-url, --target-dir")
    cfg = RepoConfig("conformance", args.metadata_url)
    return RemoteRepo(cfg, metadata_dir=args.metadata_dir,
                      target_dir=args.target_dir or args.metadata_dir / "targets",
                      metadata_url=args.metadata_url,
                      targets_url=args.target_base_url or args.metadata_url)


def run(args: argparse.Namespace) -> None:
    """Run one protocol command.

    Raises:
        UdriverError: refresh or download failed (verification or network).
        OSError: the metadata or target directory is not writable.
    """
    if args.command == "init":
        args.metadata_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.trusted_root, args.metadata_dir / "root.json")
    elif args.command == "refresh":
        _remote(args, False).refresh()
    else:
        _remote(args, True).fetch(args.target_name)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # the protocol knows only 0 and 1
        return 0 if e.code == 0 else 1
    try:
        run(args)
    except (UdriverError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except SystemExit as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
