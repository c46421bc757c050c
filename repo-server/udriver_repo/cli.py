"""`udriver-repo`: create and run a signed driver repository.

Each command calls one `Repository` method; results go to stdout, diagnostics to
stderr. A `UdriverError` prints `error: <message>` (plus `hint:`) and exits 1; Ctrl-C
exits 130. Every option can also come from an environment variable (shown in --help).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from udriver import __version__
from udriver.cli import complete, dispatch, man_page
from udriver.errors import ConfigError, RepositoryError

from ._meta import EXPIRY_DEFAULTS
from ._repository import Repository

__all__ = ["build_parser", "main", "man_page_text", "run"]

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _env(p: argparse.ArgumentParser, *flags: str, env: str, help: str, **kw: object) -> None:
    default = os.environ.get(env, kw.pop("default", None))
    p.add_argument(*flags, default=default, help=f"{help} [env: {env}]", **kw)  # type: ignore[arg-type]


def _repo_option(p: argparse.ArgumentParser) -> None:
    _env(p, "--repo", env="UDRIVER_REPO_DIR", default=".", metavar="DIR",
         help="the repository directory (default: current directory)")


def _pci_vendor(text: str) -> int:
    if not re.match(r"^(0x)?[0-9a-fA-F]{4}$", text):
        raise argparse.ArgumentTypeError(f"expected 4 hex digits (e.g. 1234), got {text!r}")
    return int(text, 16)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:  # a TCP port is 16 bits (RFC 793); 0 asks for a free one
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return port


def _count(text: str) -> int:
    if not text.isdecimal() or not 1 <= int(text) <= 1_000_000:
        raise argparse.ArgumentTypeError(f"expected a number of rows 1-1000000, got {text!r}")
    return int(text)


def _expiry(text: str) -> tuple[str, timedelta]:
    role, _, dur = text.partition("=")
    m = _DURATION.match(dur)
    if role not in EXPIRY_DEFAULTS or m is None:
        raise argparse.ArgumentTypeError(
            f"expected ROLE=DURATION with ROLE one of {', '.join(EXPIRY_DEFAULTS)} and "
            f"DURATION like 90d, 12h, 1w; got {text!r}")
    return role, timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def _version() -> str:
    """The installed udriver-repo-server version (and the udriver it runs on)."""
    from importlib.metadata import PackageNotFoundError, version

    from udriver import __version__ as udriver_version
    try:
        mine = version("udriver-repo-server")
    except PackageNotFoundError:  # a source tree on sys.path, not installed
        mine = "(not installed)"
    return f"{mine} (udriver {udriver_version})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="udriver-repo",
                                     description="Create and run a signed udriver repository.")
    parser.add_argument("--version", action="version", version=f"udriver-repo {_version()}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more diagnostics on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("init", help="create a repository: keys, TUF roles, apt key")
    p.add_argument("dir", type=Path, metavar="DIR", nargs="?",
                   help="the new repository's directory (or --repo DIR, as every command takes)")
    # Not from UDRIVER_REPO_DIR: a variable left set must not pick where keys are made.
    p.add_argument("--repo", metavar="DIR",
                   help="the new repository's directory (the same as DIR)")
    _env(p, "--root-threshold", env="UDRIVER_REPO_ROOT_THRESHOLD", type=int, default=1,
         help="signatures a new root needs")
    p.add_argument("--root-keys", type=int, default=None,
                   help="number of root keys (default: the threshold)")
    p.add_argument("--offline-root-dir", type=Path, default=None, metavar="KEYDIR",
                   help="write the root keys here instead of DIR/keys (keep it offline)")
    p.add_argument("--expiry", type=_expiry, action="append", default=[], metavar="ROLE=DUR",
                   help="role lifetime, e.g. timestamp=1d (defaults: root 365d, targets 90d, "
                        "vendor 90d, names 90d, snapshot 7d, timestamp 1d)")
    p.set_defaults(_run=_init)

    v = sub.add_parser("vendor", help="manage publishers").add_subparsers(
        dest="vendor_command", metavar="ACTION", required=True)
    p = v.add_parser("add", help="add a publisher; prints its upload token once")
    p.add_argument("name")
    p.add_argument("--pci-vendor", type=_pci_vendor, action="append", default=[],
                   metavar="VVVV", help="a PCI vendor ID it owns (repeatable)")
    p.add_argument("--class-grant", action="store_true",
                   help="may publish class-wide drivers (vendor `*`)")
    _repo_option(p)
    p.set_defaults(_run=_vendor_add)
    p = v.add_parser("list", help="list publishers")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _repo_option(p)
    p.set_defaults(_run=_vendor_list)
    p = v.add_parser("revoke", help="revoke a publisher's tokens")
    p.add_argument("name")
    _repo_option(p)
    p.set_defaults(_run=_vendor_revoke)

    n = sub.add_parser("names", help="who owns each driver name").add_subparsers(
        dest="names_command", metavar="ACTION", required=True)
    p = n.add_parser("list", help="every recorded name and its owner")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _repo_option(p)
    p.set_defaults(_run=_names_list)
    p = n.add_parser("assign", help="give a driver name to a vendor (operator override)")
    p.add_argument("name")
    p.add_argument("vendor")
    _repo_option(p)
    p.set_defaults(_run=_names_assign)
    p = n.add_parser("migrate", help="add the signed names role to an older repository")
    _repo_option(p)
    p.set_defaults(_run=_names_migrate)

    p = sub.add_parser("publish", help="validate and publish wheels and debs")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    _env(p, "--vendor", env="UDRIVER_REPO_VENDOR", required=False, help="publishing vendor")
    p.add_argument("--system", action="store_true",
                   help="add packages that are not drivers (udriver itself) to the apt view only")
    _repo_option(p)
    p.set_defaults(_run=_publish)

    p = sub.add_parser("rotate-key", help="replace the key of a role")
    p.add_argument("role", help="root, targets, snapshot, timestamp, bins, class, names, or a vendor")
    _repo_option(p)
    p.set_defaults(_run=_rotate)

    p = sub.add_parser("sign-root", help="sign a pending root with an offline root key")
    p.add_argument("--key", type=Path, required=True, metavar="FILE")
    _repo_option(p)
    p.set_defaults(_run=_sign_root)

    p = sub.add_parser("refresh", help="re-sign snapshot and timestamp before they expire")
    _repo_option(p)
    p.set_defaults(_run=_refresh)

    p = sub.add_parser("verify", help="check the tree with a fresh TUF client and gpgv")
    _env(p, "--url", env="UDRIVER_REPO_URL", help="verify over HTTP instead of the directory")
    _repo_option(p)
    p.set_defaults(_run=_verify)

    p = sub.add_parser("audit", help="print the audit log (uploads and operator actions)")
    p.add_argument("--limit", type=_count, default=50, metavar="N",
                   help="the N most recent rows, oldest first (default: 50)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _repo_option(p)
    p.set_defaults(_run=_audit)

    p = sub.add_parser("serve", help="serve the tree and the upload API")
    _env(p, "--host", env="UDRIVER_REPO_HOST", default="127.0.0.1",
         help="address to bind (default: 127.0.0.1, loopback only)")
    _env(p, "--port", env="UDRIVER_REPO_PORT", type=_port, default=8080,
         help="port (default: 8080)")
    # Limits: None here means "ServerConfig.from_env decides" (environment, then default).
    for flag, kind, env, what in _SERVE_LIMITS:
        p.add_argument(flag, type=kind, default=None, metavar="N",
                       help=f"{what} [env: {env}]")
    _repo_option(p)
    p.set_defaults(_run=_serve)
    return parser


_SERVE_LIMITS: list[tuple[str, type[int | float], str, str]] = [
    ("--max-upload", int, "UDRIVER_REPO_MAX_UPLOAD", "largest upload in bytes (default 256 MiB)"),
    ("--header-timeout", float, "UDRIVER_REPO_HEADER_TIMEOUT",
     "seconds to receive a complete request head, and keep-alive idle time (default 20)"),
    ("--body-timeout", float, "UDRIVER_REPO_BODY_TIMEOUT",
     "seconds an upload body may pause between two chunks (default 30)"),
    ("--upload-timeout", float, "UDRIVER_REPO_UPLOAD_TIMEOUT",
     "seconds a whole upload body may take (default 600)"),
    ("--vendor-uploads", int, "UDRIVER_REPO_VENDOR_UPLOADS",
     "uploads one vendor may have in progress; one more gets 429 (default 4)"),
]


def _open(args: argparse.Namespace) -> Repository:
    return Repository.open(Path(args.repo))


def _init(args: argparse.Namespace) -> int:
    given = {str(Path(d)) for d in (args.dir, args.repo) if d}
    if len(given) != 1:
        raise ConfigError("`udriver-repo init` needs one directory: DIR or `--repo DIR`"
                          + (f" (got {', '.join(sorted(given))})" if given else ""))
    repo = Repository.init(Path(given.pop()), root_threshold=args.root_threshold,
                           root_keys=args.root_keys, root_key_dir=args.offline_root_dir,
                           expiry=dict(args.expiry))
    print(f"initialised repository {repo.path}")
    print(f"bootstrap root: {repo.public / 'keys' / 'root.json'}")
    print(f"apt key: {repo.public / 'keys' / 'apt.asc'} ({repo.gpg.fingerprint()})")
    return 0


def _vendor_add(args: argparse.Namespace) -> int:
    token = _open(args).add_vendor(args.name, args.pci_vendor, args.class_grant)
    print(f"vendor {args.name} added; upload token (shown once, store it now):")
    print(token)
    return 0


def _vendor_list(args: argparse.Namespace) -> int:
    vendors = _open(args).list_vendors()
    if args.json:
        print(json.dumps([{"name": v.name, "pci_vendors": [f"{i:04x}" for i in v.pci_vendors],
                           "class_grant": v.class_grant, "revoked": v.revoked,
                           "created": v.created} for v in vendors], indent=2))
        return 0
    for v in vendors:
        flags = ("class-grant " if v.class_grant else "") + ("REVOKED" if v.revoked else "")
        ids = ",".join(f"{i:04x}" for i in v.pci_vendors) or "-"
        print(f"{v.name}\t{ids}\t{flags.strip()}".rstrip())
    return 0


def _vendor_revoke(args: argparse.Namespace) -> int:
    _open(args).revoke_vendor(args.name)
    print(f"vendor {args.name} revoked")
    return 0


def _names_list(args: argparse.Namespace) -> int:
    names = _open(args).names()
    if args.json:
        print(json.dumps(names, indent=2))
        return 0
    for name, owner in names.items():
        print(f"{name}\t{owner}")
    return 0


def _names_assign(args: argparse.Namespace) -> int:
    before = _open(args).assign_name(args.name, args.vendor)
    print(f"name {args.name}: {before or 'unowned'} -> vendor-{args.vendor.removeprefix('vendor-')}")
    return 0


def _names_migrate(args: argparse.Namespace) -> int:
    r = _open(args).migrate_names()
    if not r.created:
        print("names role already present: nothing to migrate")
        return 0
    print(f"names role created; {len(r.assigned)} name(s) assigned")
    for name, roles in r.contested.items():
        print(f"contested (assign it with `udriver-repo names assign`): {name}: "
              f"{', '.join(roles)}")
    for name in r.unassigned:
        print(f"unassigned (class-wide, publisher unknown): {name}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    if args.system:
        if args.vendor:
            raise RepositoryError("`--system` packages have no vendor: drop `--vendor`")
        changed = _open(args).publish_system(args.files)
        names = ", ".join(f.name for f in args.files)
        print(f"{'published' if changed else 'unchanged'} in the apt view: {names}")
        return 0
    if not args.vendor:
        raise RepositoryError("`--vendor` is required (or set UDRIVER_REPO_VENDOR)")
    res = _open(args).publish(args.files, vendor=args.vendor)
    for d in res.drivers:
        state = "unchanged" if res.unchanged else "published"
        print(f"{state}: {d.package} {d.version} ({d.driver}) -> {', '.join(d.indexes)}")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    _open(args).rotate_key(args.role)
    print(f"rotated the `{args.role}` key")
    return 0


def _sign_root(args: argparse.Namespace) -> int:
    _open(args).sign_root(args.key)
    print("root signed and committed")
    return 0


def _refresh(args: argparse.Namespace) -> int:
    v = _open(args).refresh()
    print(f"refreshed: timestamp version {v}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    report = _open(args).verify(url=args.url)
    for p in report.problems:
        print(f"FAILED {p}")
    vers = " ".join(f"{k}={v}" for k, v in report.versions.items())
    print(f"{'OK' if report.ok else 'FAILED'}: {vers}; {report.indexes} index(es), "
          f"{report.files} file(s), {report.apt_packages} apt package(s) verified")
    return 0 if report.ok else 1


def _audit(args: argparse.Namespace) -> int:
    """The log's rows as stored: every text field escaped (`_audit.escape_text`)."""
    rows = _open(args).audit.entries(args.limit)
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
        return 0
    for r in rows:
        who = r.actor if r.actor is not None else f"{r.vendor or '-'}@{r.client or '-'}"
        what = " ".join(str(x) for x in (r.filename, r.size, r.sha256) if x is not None)
        print("\t".join((r.time, who, r.action, "-" if r.status is None else str(r.status),
                         r.result, what or "-", r.message or "-")))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .server import ServerConfig, serve
    overrides = {flag[2:].replace("-", "_"): getattr(args, flag[2:].replace("-", "_"))
                 for flag, *_ in _SERVE_LIMITS}
    overrides["max_upload_bytes"] = overrides.pop("max_upload")
    config = ServerConfig.from_env(**overrides)  # ConfigError for a bad value

    def ready(url: str) -> None:
        print(f"serving {args.repo} at {url} (Ctrl-C or SIGTERM stops)", flush=True)

    serve(Path(args.repo), host=args.host, port=int(args.port), config=config, on_ready=ready)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return dispatch(args, args._run)
    finally:
        from ._gpg import stop_agents
        stop_agents()  # no gpg-agent is left behind by a command (issue 13)


def man_page_text(date: str) -> str:
    """`udriver-repo`'s man page for the release of `date` (YYYY-MM-DD), from its parser.

    The wheel ships it (repo-server/man/udriver-repo.1, share/man/man1 in its data);
    tests/unit/test_repo_cli_docs.py fails when the committed page differs from this.
    """
    return man_page(build_parser(), "udriver-repo", __version__, date)


def run() -> None:
    # Completion first (the shell runs the command with _ARGCOMPLETE set): the same
    # argparse parser as udriver's, through argcomplete (udriver.cli.complete).
    complete(build_parser())
    sys.exit(main())
