"""Shared helper: a Debian minbase chroot for tests that run dpkg/apt.

The chroot is made once with `debootstrap --variant=minbase SUITE` from the mirror
named in /etc/apt/sources.list.d/debian.sources and cached as
${UDRIVER_CHROOT_CACHE:-/var/cache/udriver-chroot}/SUITE-minbase.tar.gz (the same
tarball tests/integration/test_build_deb.py uses), so later runs only unpack it.
SUITE is `bookworm` (Debian 12, the default) or `trixie` (Debian 13, the booted-system
test of issue 12). Next to the tarball, SUITE-minbase.json records what was bootstrapped
(the suite's Release `Version:`/`Date:` as the chroot's apt saw them and
/etc/debian_version), since deb.debian.org serves only a suite's latest point release.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

__all__ = [
    "SUITES",
    "chroot_record",
    "chroot_tarball",
    "need_tools",
    "run_in_chroot",
    "unpack_chroot",
]

SUITES = ("bookworm", "trixie")
"""The Debian suites a chroot can be made of (by codename, never `stable`, which moves)."""


def need_tools(*tools: str) -> None:
    """Skip (fail under CI=true) unless every tool is on PATH."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs {', '.join(missing)} (installed by .ci/setup)")
        pytest.skip(f"needs {', '.join(missing)} (installed by .ci/setup)")


def _mirror() -> str:
    text = Path("/etc/apt/sources.list.d/debian.sources").read_text()
    for para in text.split("\n\n"):
        if re.search(r"^Suites:.*\bbookworm\b", para, re.MULTILINE) and "debian-security" not in para:
            m = re.search(r"^URIs:\s*(\S+)", para, re.MULTILINE)
            if m:
                return m.group(1)
    raise AssertionError("no bookworm URIs in /etc/apt/sources.list.d/debian.sources")


def _cache() -> Path:
    return Path(os.environ.get("UDRIVER_CHROOT_CACHE") or "/var/cache/udriver-chroot")


def _record(work: Path, suite: str) -> dict[str, str]:
    """What debootstrap made: the Release fields it verified, /etc/debian_version."""
    rec = {"suite": suite, "debian_version": (work / "etc/debian_version").read_text().strip()}
    for release in sorted((work / "var/lib/apt/lists").glob("*Release")):
        for field in ("Version", "Date", "Codename"):
            m = re.search(rf"^{field}:\s*(.+)$", release.read_text(errors="replace"), re.MULTILINE)
            if m:
                rec[f"release_{field.lower()}"] = m.group(1).strip()
    return rec


def chroot_record(suite: str = "bookworm") -> dict[str, str]:
    """What the cached `suite` chroot was made from (see the module docstring)."""
    path = _cache() / f"{suite}-minbase.json"
    chroot_tarball(suite)
    return json.loads(path.read_text()) if path.is_file() else {"suite": suite}


def chroot_tarball(suite: str = "bookworm") -> Path:
    """The cached minbase tarball of `suite`, made with debootstrap on first use."""
    assert suite in SUITES, f"unknown suite {suite!r}: expected one of {', '.join(SUITES)}"
    cache = _cache()
    tarball = cache / f"{suite}-minbase.tar.gz"
    if tarball.is_file():
        return tarball
    need_tools("debootstrap")
    cache.mkdir(parents=True, exist_ok=True)
    work = cache / f".build-{suite}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    r = subprocess.run(["debootstrap", "--variant=minbase", suite, str(work), _mirror()],
                       capture_output=True, text=True, timeout=1800, check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (cache / f"{suite}-minbase.json").write_text(json.dumps(_record(work, suite), indent=1) + "\n")
    part = tarball.with_suffix(".part")
    with tarfile.open(part, "w:gz", compresslevel=1) as tf:
        tf.add(work, arcname=".")
    os.replace(part, tarball)
    shutil.rmtree(work, ignore_errors=True)
    return tarball


def unpack_chroot(dest: Path, suite: str = "bookworm") -> Path:
    """Unpack a fresh chroot of `suite` into `dest` (skips unless root)."""
    if os.geteuid() != 0:
        pytest.skip("a chroot needs root")
    tarball = chroot_tarball(suite)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tf:
        tf.extractall(dest, filter="fully_trusted")  # our own cache, made above
    return dest


def run_in_chroot(root: Path, *cmd: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run `cmd` inside the chroot (non-interactive apt/dpkg environment)."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
           "LANG": "C.UTF-8", "HOME": "/root"}
    return subprocess.run(["chroot", str(root), *cmd], capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)
