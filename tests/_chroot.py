"""Shared helper: a Debian 12 (bookworm) minbase chroot for tests that run dpkg/apt.

The chroot is made once with `debootstrap --variant=minbase bookworm` from the mirror
named in /etc/apt/sources.list.d/debian.sources and cached as
${UDRIVER_CHROOT_CACHE:-/var/cache/udriver-chroot}/bookworm-minbase.tar.gz (the same
tarball tests/integration/test_build_deb.py uses), so later runs only unpack it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

__all__ = ["chroot_tarball", "need_tools", "run_in_chroot", "unpack_chroot"]


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


def chroot_tarball() -> Path:
    """The cached minbase tarball, made with debootstrap on first use."""
    cache = Path(os.environ.get("UDRIVER_CHROOT_CACHE") or "/var/cache/udriver-chroot")
    tarball = cache / "bookworm-minbase.tar.gz"
    if tarball.is_file():
        return tarball
    need_tools("debootstrap")
    cache.mkdir(parents=True, exist_ok=True)
    work = cache / f".build-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    r = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(work), _mirror()],
                       capture_output=True, text=True, timeout=1800, check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    part = tarball.with_suffix(".part")
    with tarfile.open(part, "w:gz", compresslevel=1) as tf:
        tf.add(work, arcname=".")
    os.replace(part, tarball)
    shutil.rmtree(work, ignore_errors=True)
    return tarball


def unpack_chroot(dest: Path) -> Path:
    """Unpack a fresh chroot into `dest` (skips unless root)."""
    if os.geteuid() != 0:
        pytest.skip("a chroot needs root")
    tarball = chroot_tarball()
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
