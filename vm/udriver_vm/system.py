"""A booted Debian system for ``Guest(system=...)``: udriver installed from its own .deb with apt.

``system_root(debs, suite=...)`` returns the root directory of a Debian 12 (``bookworm``, the
default) or Debian 13 (``trixie``, issue 12) system made from that suite's cached minbase
chroot (:mod:`_chroot`), where real ``apt-get install`` put:

* ``systemd``, ``systemd-sysv`` (systemd is ``/sbin/init``), ``udev``, ``kmod`` from Debian;
* ``udriver`` and ``udriver-repo-server`` from the project's own signed apt view
  (``udriver-repo publish --system``, served on the host's loopback for the install, with
  ``signed-by`` the view's key), i.e. exactly what an administrator does. The same .debs,
  built once on the Debian 12 host, serve both suites (docs/packaging.md explains why they
  install on Debian 13's Python 3.13).

Timers that would try the network (apt-daily...) are masked, the hostname is set, the apt
source that pointed at the build's loopback server is removed (its key stays in
``/etc/apt/keyrings``). Nothing else is changed: the unit, the udev rules, the system user
and the state directories are the packages' own.

The result is cached under ``${UDRIVER_VM_CACHE:-/var/cache/udriver-vm}/system/<key>``
(bookworm) or ``.../system/<suite>-<key>`` (trixie), keyed by the .debs' bytes, the minbase
tarball and this recipe; ``/etc/udriver-test-system.json`` in it records the suite, its
point release (as debootstrap verified it) and the Python apt installed. Building it takes a
minute or two (it downloads systemd and friends from the Debian mirror), a cached one nothing.
Other cached systems of the same suite are deleted when a new one is made, once unused for six
hours (``_STALE``). The guest mounts the root read-only (its writes go to a tmpfs overlay), so
one copy serves every guest.

``.ci/setup`` builds both ahead of the tests (``python3 -m udriver_vm.system build``), so
that a cold CI machine pays the debootstrap in set-up and the tests find the cache.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from . import kernels
from ._paths import checkout_root
from .chroot import chroot_record, chroot_tarball, need_tools, run_in_chroot, unpack_chroot

__all__ = ["PACKAGES", "SUITES", "system_root"]

SUITES = {"bookworm": "Debian 12", "trixie": "Debian 13"}
"""The systems a guest can boot, by codename (never ``stable``, which moves)."""

PACKAGES = ("systemd", "systemd-sysv", "udev", "kmod", "udriver", "udriver-repo-server")
"""What ``apt-get install --no-install-recommends`` puts on the minbase system."""

_MASKED = ("apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "fstrim.timer",
           "dpkg-db-backup.timer", "man-db.timer",
           # Debian 13 mounts a tmpfs on /tmp at boot (tmp.mount); it would hide the 9p work
           # share, which the initramfs mounts at the checkout's own path, when the checkout
           # is under /tmp (the guest booted, its agent never answered: CI timed out at 400 s).
           "tmp.mount")
_RECIPE = "1:" + ",".join(PACKAGES) + ":" + ",".join(_MASKED)
_ROOT = checkout_root()
_STALE = 6 * 3600
"""Seconds after its last use that another checkout's system may be deleted. Checkouts on one
machine (worktrees, CI) build different .debs, hence different systems; deleting one that a
running guest boots from breaks that guest (its root vanishes), so only long-unused ones go."""


def _key(debs: dict[str, Path], suite: str) -> str:
    h = hashlib.sha256(_RECIPE.encode())
    tarball = chroot_tarball(suite)
    st = tarball.stat()
    h.update(f"{tarball.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    for name in ("udriver", "udriver-repo-server"):
        h.update(name.encode() + b"\0" + debs[name].read_bytes())
    key = h.hexdigest()[:16]
    # Debian 12 keeps the bare key (the layout older checkouts share this cache with).
    return key if suite == "bookworm" else f"{suite}-{key}"


def _same_suite(name: str, suite: str) -> bool:
    prefixes = [f"{s}-" for s in SUITES if s != "bookworm"]
    if suite == "bookworm":
        return not name.startswith(".") and not name.startswith(tuple(prefixes))
    return name.startswith(f"{suite}-")


def system_root(debs: dict[str, Path], log: Callable[[str], object] | None = None,
                suite: str = "bookworm") -> Path:
    """The cached system for these .debs (``{"udriver": deb, "udriver-repo-server": deb}``).

    Args:
        debs: udriver's packages, e.g. from :func:`_debian.build_udriver_debs`.
        log: a callable taking one line of progress (default: nothing).
        suite: ``bookworm`` (Debian 12) or ``trixie`` (Debian 13), see :data:`SUITES`.

    Raises:
        AssertionError: ``suite`` is unknown, or debootstrap or apt failed (with their output).
    """
    assert suite in SUITES, f"unknown suite {suite!r}: expected one of {', '.join(SUITES)}"
    need_tools("chroot", "gpg")
    say = log or (lambda line: None)
    cache = kernels.cache_dir() / "system"
    cache.mkdir(parents=True, exist_ok=True)
    root = cache / _key(debs, suite)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a test run and `make demo` may build at once
        if root.is_dir():  # made by os.replace below: complete
            os.utime(root)  # in use: see _STALE
            return root
        for old in cache.iterdir():
            if old.is_dir() and _same_suite(old.name, suite) and \
                    time.time() - old.stat().st_mtime > _STALE:
                shutil.rmtree(old, ignore_errors=True)
        with tempfile.TemporaryDirectory(dir=cache, prefix=".build-") as tmp:
            part = _build(Path(tmp), debs, say, suite)
            os.replace(part, root)
            os.utime(root)  # the unpacked tree keeps debootstrap's mtime
    return root


def _build(tmp: Path, debs: dict[str, Path], say: Callable[[str], object], suite: str) -> Path:
    from udriver_repo import Repository

    from .treeserver import TreeServer

    say(f"  making the {SUITES[suite]} system (debootstrap minbase {suite}, cached)")
    root = unpack_chroot(tmp / "root", suite)
    repo = Repository.init(tmp / "repo")
    try:
        repo.publish_system([debs["udriver"], debs["udriver-repo-server"]])
    finally:
        repo.stop_agent()
    keyring = root / "etc/apt/keyrings/udriver.gpg"
    keyring.parent.mkdir(parents=True, exist_ok=True)
    keyring.write_bytes((tmp / "repo/public/keys/apt.gpg").read_bytes())
    sources = root / "etc/apt/sources.list.d/udriver.list"

    def chroot(*cmd: str) -> None:
        r = run_in_chroot(root, *cmd, timeout=1800)
        assert r.returncode == 0, f"{cmd}: {r.stdout[-3000:]}\nSTDERR: {r.stderr[-3000:]}"

    with TreeServer(tmp / "repo/public") as server:
        sources.write_text(f"deb [signed-by=/etc/apt/keyrings/udriver.gpg] {server.url} "
                           "stable main\n")
        say(f"  apt-get install {' '.join(PACKAGES)} (udriver from the signed apt view)")
        chroot("apt-get", "update")
        chroot("apt-get", "install", "-y", "--no-install-recommends", *PACKAGES)
    sources.unlink()
    chroot("apt-get", "clean")
    for unit in _MASKED:
        link = root / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    (root / "etc/hostname").write_text("udriver-guest\n")
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\tudriver-guest\n")
    record = chroot_record(suite)
    record["python3"] = os.readlink(root / "usr/bin/python3")  # e.g. python3.13
    (root / "etc/udriver-test-system.json").write_text(json.dumps(record, indent=1) + "\n")
    return root


def main(argv: list[str] | None = None) -> int:
    """``python3 -m udriver_vm.system build [SUITE...]``: build udriver's .debs from this
    checkout and the cached systems for them (default: every suite), as ``.ci/setup`` does."""
    from .debs import build_udriver_debs

    ap = argparse.ArgumentParser(prog="python3 -m udriver_vm.system", description=main.__doc__)
    ap.add_argument("command", choices=["build"])
    ap.add_argument("suites", nargs="*", metavar="SUITE", help=f"of {', '.join(SUITES)}")
    args = ap.parse_args(argv)
    unknown = [s for s in args.suites if s not in SUITES]
    if unknown:
        ap.error(f"unknown suite {unknown[0]!r}: expected one of {', '.join(SUITES)}")
    with tempfile.TemporaryDirectory(prefix="udriver-system-") as tmp:
        debs = build_udriver_debs(Path(tmp))
        for suite in args.suites or SUITES:
            print(f">> {SUITES[suite]} ({suite}) system for the booted-system test", flush=True)
            print(f"   {system_root(debs, print, suite)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
