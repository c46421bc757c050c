"""Fetch and cache the Debian kernels (and udev) that the QEMU guest boots.

Run ``python3 -m udriver_vm.kernels fetch`` once per machine (``.ci/setup`` does). Everything lands in
``${UDRIVER_VM_CACHE:-/var/cache/udriver-vm}``, outside the checkout, so fresh clones reuse it.

Rules of this module:

* Four kernels: 5.10 (Debian 11), 6.1 (Debian 12), 6.12 (bookworm-backports) and 7.2 (sid).
* 6.1 and 6.12 follow Debian 12: their package names are never pinned. Debian renames the kernel
  package with every ABI bump (``linux-image-6.1.0-56-amd64`` today), so the name is resolved at
  run time from the ``linux-image-amd64`` metapackage with ``apt-cache depends`` (for 6.12 with
  the ``bookworm-backports`` suite as default release). The 6.12 kernel's apt source file is
  generated with the mirror URI READ from ``/etc/apt/sources.list.d/debian.sources``.
* 5.10 and 7.2 are PINNED (``_PINNED``: suite, package names, Debian version): they come from
  suites this machine does not run (bullseye, sid), through a private apt configuration per suite
  (:mod:`_apt`, ``-o Dir::Etc::sourcelist``) that the host's own apt never reads. The pin is
  checked with ``apt-cache``; a superseded version is an error that says what to bump to. Each
  .deb is verified by apt's signature chain (InRelease -> Packages -> .deb) and its sha256 is
  checked against, and recorded from, the Packages index. 7.2's packaging is split: the image is
  ``/usr/lib/modules/<ver>/vmlinuz.unsigned`` in ``linux-binary-unsigned-*``, the modules in
  ``linux-modules-*``, the config in ``linux-base-*``; all three unpack into one tree.
* Order of operations per kernel: resolve name -> ``apt-get download`` -> ``dpkg -x`` (each
  package) ->
  extract an uncompressed ``vmlinux`` from the bzImage (QEMU boots it through the PVH ELF note,
  which saves the ~3.4 s in-guest decompression) -> ``depmod`` -> write ``stamp.json`` last.
  A cache entry without a stamp is incomplete and is rebuilt.
* A second run with everything cached only runs ``apt-cache`` and takes about a second. If apt
  cannot resolve or download (offline) but a complete cache entry exists, that entry is used.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from ._debfetch import (
    BACKPORTS,
    deb_version,
    debian_mirror,
    download,
    ensure_backports,
    extract_vmlinux,
    resolve,
    run,
)
from ._errors import KernelFetchError
from .apt import AptError, SuiteApt

_debian_mirror = debian_mirror  # the name tests/vm/test_kernels.py reads the mirror with

__all__ = [
    "KERNELS",
    "KernelFetchError",
    "KernelPaths",
    "cache_dir",
    "extract_vmlinux",
    "fetch",
    "fetch_udev",
    "kernel_paths",
    "udev_root",
]

_log = logging.getLogger("udriver.vm.kernels")

KERNELS = ("5.10", "6.1", "6.12", "7.2")
"""The kernels the guest can boot, oldest first."""


@dataclasses.dataclass(frozen=True)
class _Pin:
    """A kernel pinned to exact packages of a suite this host does not run."""

    suite: str
    """Debian suite whose private apt configuration serves the packages."""
    version: str
    """Debian version of every package (``apt-cache madison``)."""
    packages: tuple[str, ...]
    """Packages unpacked into one tree; the first holds the image."""
    similar: str
    """``apt-cache search --names-only`` regex naming successors when the pin is gone."""


_PINNED = {
    "5.10": _Pin(
        "bullseye", "5.10.223-1", ("linux-image-5.10.0-32-amd64-unsigned",),
        r"^linux-image-5\.10\.0-[0-9]+-amd64-unsigned$",
    ),
    "7.2": _Pin(
        "sid", "7.2.13-1",
        (
            "linux-binary-unsigned-7.2.13+deb14-amd64",
            "linux-modules-7.2.13+deb14-amd64",
            "linux-base-7.2.13+deb14-amd64",
        ),
        r"^linux-binary-unsigned-[0-9.]+\+deb[0-9]+-amd64$",
    ),
}  # fmt: skip

_STAMP = "stamp.json"


@dataclasses.dataclass(frozen=True)
class KernelPaths:
    """Where a fetched kernel lives on the host."""

    vmlinux: Path
    """Uncompressed ELF kernel with a PVH entry note, for ``qemu -kernel``."""
    modules_dir: Path
    """``lib/modules/<version>`` of the unpacked package, with ``modules.dep`` from depmod."""
    version: str
    """Kernel release string (``uname -r`` in the guest), e.g. ``6.1.0-56-amd64``."""


def cache_dir() -> Path:
    """Return the cache root (``$UDRIVER_VM_CACHE`` or ``/var/cache/udriver-vm``)."""
    return Path(os.environ.get("UDRIVER_VM_CACHE") or "/var/cache/udriver-vm")


def kernel_paths(name: str) -> KernelPaths:
    """Return the cached kernel ``name`` ("6.1" or "6.12") without touching the network.

    Raises:
        KernelFetchError: ``name`` is unknown, or the kernel was never fetched.
    """
    if name not in KERNELS:
        raise KernelFetchError(f"unknown kernel {name!r}: expected one of {', '.join(KERNELS)}")
    stamp = cache_dir() / f"linux-{name}" / _STAMP
    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError) as e:
        raise KernelFetchError(
            f"kernel {name} is not cached ({stamp} unreadable: {e}); "
            "run `python3 -m udriver_vm.kernels fetch`"
        ) from e
    paths = KernelPaths(Path(data["vmlinux"]), Path(data["modules_dir"]), data["version"])
    if not paths.vmlinux.is_file() or not (paths.modules_dir / "modules.dep").is_file():
        raise KernelFetchError(f"kernel {name} cache is incomplete under {stamp.parent}; refetch")
    return paths


def udev_root() -> Path:
    """Return the directory where the ``udev`` package was unpacked (``dpkg -x``).

    Raises:
        KernelFetchError: udev was never fetched.
    """
    root = cache_dir() / "udev"
    if not (root / _STAMP).is_file():
        raise KernelFetchError(f"udev is not cached under {root}; run `python3 -m udriver_vm.kernels fetch`")
    return root / "root"


# --- fetch -----------------------------------------------------------------------------------


def _cached_stamp(entry: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((entry / _STAMP).read_text())
    except (OSError, ValueError):
        return None
    return data


def _unpack(name: str, entry: Path, debs: list[Path], stamp: dict[str, Any]) -> KernelPaths:
    """``dpkg -x`` every .deb into one tree, extract vmlinux, run depmod, write the stamp last."""
    root = entry / "root"
    shutil.rmtree(root, ignore_errors=True)
    for deb in debs:
        run(["dpkg", "-x", str(deb), str(root)])
    mods = sorted(p for p in (root / "lib/modules", root / "usr/lib/modules") if p.is_dir())
    versions = [d for m in mods for d in m.iterdir() if d.is_dir()]
    if len(versions) != 1:
        raise KernelFetchError(f"kernel {name}: {len(versions)} module trees, expected 1")
    moddir = versions[0]
    version = moddir.name
    # Debian 12/11 ship /boot/vmlinuz-<ver>; 7.2's split packaging ships the image in the
    # module tree as vmlinuz.unsigned (linux-binary-unsigned-*).
    images = [
        p for p in (root / "boot" / f"vmlinuz-{version}", moddir / "vmlinuz.unsigned",
                    moddir / "vmlinuz") if p.is_file()
    ]  # fmt: skip
    if not images:
        raise KernelFetchError(f"kernel {name}: no vmlinuz for {version} in {root}")
    vmlinux = entry / "vmlinux"
    with tempfile.NamedTemporaryFile(dir=entry, delete=False) as tmp:
        tmp.write(extract_vmlinux(images[0]))
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, vmlinux)
    # depmod -b BASE looks for BASE/lib/modules/<version>.
    run(["depmod", "-b", str(moddir.parent.parent.parent), version])
    for deb in debs:
        deb.unlink()  # 15-110 MB each; the unpacked tree is what we use
    stamp.update(version=version, vmlinux=str(vmlinux), modules_dir=str(moddir))
    (entry / _STAMP).write_text(json.dumps(stamp, indent=1))
    _log.info("kernel %s: %s (%s) cached in %s", name, stamp["package"], version, entry)
    return kernel_paths(name)


def _fetch_pinned(name: str, entry: Path) -> KernelPaths:
    """Fetch a :data:`_PINNED` kernel through its suite's private apt configuration."""
    pin = _PINNED[name]
    key = f"{pin.packages[0]}={pin.version}"
    old = _cached_stamp(entry)
    if old and old.get("package") == key:
        try:
            return kernel_paths(name)  # pinned and complete: no network needed at all
        except KernelFetchError:
            pass
    try:
        apt = SuiteApt(pin.suite, debian_mirror(), cache_dir() / "apt" / pin.suite)
        if not apt.has_lists():
            apt.update()
        try:
            sums = {p: apt.resolve(p, pin.version, pin.similar) for p in pin.packages}
        except AptError:
            apt.update()  # stale lists: refresh once, then the error stands
            sums = {p: apt.resolve(p, pin.version, pin.similar) for p in pin.packages}
        entry.mkdir(parents=True, exist_ok=True)
        (entry / _STAMP).unlink(missing_ok=True)
        debs = [apt.download(p, pin.version, sums[p], entry) for p in pin.packages]
    except AptError as e:
        raise KernelFetchError(f"kernel {name}: {e}") from e
    stamp: dict[str, Any] = {
        "package": key,
        "suite": pin.suite,
        "debs": {p: {"version": pin.version, "sha256": sums[p]} for p in pin.packages},
    }
    return _unpack(name, entry, debs, stamp)


def fetch(name: str) -> KernelPaths:
    """Make sure kernel ``name`` is cached and return its paths (see module docstring).

    Raises:
        KernelFetchError: a step failed and no complete older cache entry exists, or a pinned
            version is no longer offered (the message says what to bump it to).
    """
    entry = cache_dir() / f"linux-{name}"
    if name in _PINNED:
        return _fetch_pinned(name, entry)
    release = None
    try:
        if name == "6.12":
            release = BACKPORTS
            if ensure_backports():
                run(["apt-get", "update", "-q"])
        try:
            pkg = resolve(name)
        except KernelFetchError:
            run(["apt-get", "update", "-q"])
            pkg = resolve(name)
    except KernelFetchError:
        if _cached_stamp(entry):
            _log.warning("cannot resolve kernel %s with apt; using the cached one", name)
            return kernel_paths(name)
        raise
    old = _cached_stamp(entry)
    if old and old.get("package") == pkg:
        try:
            return kernel_paths(name)
        except KernelFetchError:
            pass
    entry.mkdir(parents=True, exist_ok=True)
    (entry / _STAMP).unlink(missing_ok=True)
    deb = download(pkg, entry, release)
    return _unpack(name, entry, [deb], {"package": pkg})


def fetch_udev() -> Path:
    """Cache ``apt-get download udev`` unpacked with ``dpkg -x`` (nothing installed on the host).

    Raises:
        KernelFetchError: the download or unpacking failed and nothing is cached.
    """
    entry = cache_dir() / "udev"
    old = _cached_stamp(entry)
    if old and (entry / "root").is_dir():
        return entry / "root"
    entry.mkdir(parents=True, exist_ok=True)
    deb = download("udev", entry, None)
    root = entry / "root"
    shutil.rmtree(root, ignore_errors=True)
    run(["dpkg", "-x", str(deb), str(root)])
    version = deb_version(deb)
    deb.unlink()
    (entry / _STAMP).write_text(json.dumps({"package": "udev", "version": version}))
    return root


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python3 -m udriver_vm.kernels fetch|show [--kernel 5.10|6.1|6.12|7.2]...``.

    (The kernel x feature table is ``python3 -m udriver_vm.capabilities``.)
    """
    ap = argparse.ArgumentParser(prog="python3 -m udriver_vm.kernels",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["fetch", "show"])
    ap.add_argument("--kernel", action="append", choices=KERNELS, help="default: all")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = tuple(args.kernel or KERNELS)
    try:
        for name in names:
            kp = fetch(name) if args.action == "fetch" else kernel_paths(name)
            print(f"{name}: {kp.version} {kp.vmlinux}")
        if args.action == "fetch":
            print(f"udev: {fetch_udev()}")
    except KernelFetchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
