"""`udriver upload FILE...`: publish built drivers to a repository server (for vendors)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict

from . import env_option
from ._clientopts import add_json_option, print_json

__all__ = ["HELP", "add_arguments", "main"]

HELP = "upload built driver wheels and debs to a repository server (vendors; token from env)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="wheels and .debs (dist/*)")
    env_option(p, "--url", env="UDRIVER_UPLOAD_URL", metavar="URL",
               help="the repository server, e.g. https://drivers.example.org")
    env_option(p, "--token-file", env="UDRIVER_UPLOAD_TOKEN_FILE", metavar="FILE",
               help="file (mode 0600) holding the upload token; without it the token is read "
                    "from UDRIVER_UPLOAD_TOKEN")
    add_json_option(p)


def main(args: argparse.Namespace) -> int:
    from ..client import read_token, upload
    from ..errors import ConfigError

    if not args.url:
        err = ConfigError("`--url URL` is required: the repository server to upload to")
        err.hint = "or set UDRIVER_UPLOAD_URL"
        raise err
    results = upload(args.url, read_token(args.token_file), args.files)
    if args.json:
        print_json([asdict(r) for r in results])
    else:
        for r in results:
            if r.ok:
                print(f"{r.result} {r.file} (sha256 {r.sha256[:16]})")
            else:
                status = f"HTTP {r.status} " if r.status else ""
                print(f"error: {r.file}: {status}{r.result}: {r.message}", file=sys.stderr)
    return 0 if all(r.ok for r in results) else 1
