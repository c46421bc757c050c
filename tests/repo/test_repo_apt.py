"""Acceptance 2: real apt in a Debian 12 chroot uses the apt view.

The repository, with examples/edu as built by `udriver build` published, is served on
loopback; the chroot's only source
is `deb [signed-by=/usr/share/keyrings/udriver.gpg] http://127.0.0.1:PORT stable main`.
`apt-get update` must succeed and `apt-get install udriver-driver-edu` must install the
driver. Its dependencies -- the runtime package `udriver` and `python3` -- are not
drivers (the repository does not carry them) and this test does not run the driver, so
a stub `udriver` package that also `Provides: python3 (= 3.11.2-1)` is installed with
dpkg first, keeping the test off the network.
With one byte of InRelease changed, `apt-get update` must fail on the signature.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from udriver_vm.chroot import need_tools, run_in_chroot, unpack_chroot
from udriver_vm.repofactory import make_driver
from udriver_vm.treeserver import TreeServer

pytestmark = pytest.mark.slow


def _stub_runtime(tmp: Path) -> Path:
    root = tmp / "udriver-stub"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: udriver\nVersion: 0.1.0-1\nArchitecture: all\n"
        "Provides: python3 (= 3.11.2-1)\n"
        "Maintainer: Test <test@example.org>\nDescription: stand-in for the udriver runtime\n")
    out = tmp / "udriver_0.1.0-1_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(out)],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def chroot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_tools("chroot", "dpkg-deb", "gpgv")
    return unpack_chroot(tmp_path_factory.mktemp("aptchroot") / "root")


def _configure(chroot: Path, repo, url: str) -> None:
    (chroot / "usr/share/keyrings").mkdir(parents=True, exist_ok=True)
    (chroot / "usr/share/keyrings/udriver.gpg").write_bytes(
        (repo.public / "keys/apt.gpg").read_bytes())
    for p in [chroot / "etc/apt/sources.list", *(chroot / "etc/apt/sources.list.d").glob("*")]:
        p.unlink(missing_ok=True)
    (chroot / "etc/apt/sources.list.d/udriver.list").write_text(
        f"deb [signed-by=/usr/share/keyrings/udriver.gpg] {url} stable main\n")
    lists = chroot / "var/lib/apt/lists"
    for p in lists.glob("*"):
        if p.is_file():
            p.unlink()


def test_apt_update_and_install_then_tampered_inrelease_fails(repo, built_edu, chroot, tmp_path):
    published_repo = repo
    repo.publish(built_edu, vendor="qemu")
    with TreeServer(published_repo.public) as srv:
        _configure(chroot, published_repo, srv.url)
        r = run_in_chroot(chroot, "apt-get", "update")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "stable InRelease" in r.stdout and "W:" not in r.stdout + r.stderr, r.stdout + r.stderr
        r = run_in_chroot(chroot, "apt-cache", "show", "udriver-driver-edu")
        assert "Modaliases: udriver(pci:v00001234d000011E8sv*sd*bc*sc*i*)" in r.stdout, r.stdout
        stub = _stub_runtime(tmp_path)
        (chroot / "tmp" / stub.name).write_bytes(stub.read_bytes())
        r = run_in_chroot(chroot, "dpkg", "-i", f"/tmp/{stub.name}")
        assert r.returncode == 0, r.stdout + r.stderr
        r = run_in_chroot(chroot, "apt-get", "install", "-y", "--no-install-recommends",
                          "udriver-driver-edu")
        assert r.returncode == 0, r.stdout + r.stderr
        assert (chroot / "usr/share/udriver/drivers/edu.json").is_file()
        r = run_in_chroot(chroot, "dpkg-query", "-W", "-f=${Status}", "udriver-driver-edu")
        assert r.stdout == "install ok installed"

        inrelease = published_repo.public / "dists/stable/InRelease"
        inrelease.write_text(inrelease.read_text().replace("Label: udriver", "Label: udrivex", 1))
        _configure(chroot, published_repo, srv.url)  # fresh lists: no earlier state to fall back on
        r = run_in_chroot(chroot, "apt-get", "update")
        assert r.returncode != 0, r.stdout + r.stderr
        out = r.stdout + r.stderr
        assert "BADSIG" in out or "signatures were invalid" in out, out


def test_apt_reads_every_chunk_of_the_index(repo, chroot, tmp_path):
    """The index is one gzip member and one xz block per chunk (see `_apt`); real apt
    must see every package, whichever compression it picks."""
    names = []
    for i in range(8):
        _, files = make_driver(tmp_path / f"d{i}", f"udriver-c{i}", "1.0.0", f"c{i}",
                               (f"pci:v00001234d0000{0x100 + i:04X}sv*sd*bc*sc*i*",))
        repo.publish(files, vendor="qemu")
        names.append(f"udriver-driver-c{i}")
    chunks = json.loads(next((repo.path / "apt-state").glob("*.json")).read_bytes())["chunks"]
    assert len(chunks) > 1
    with TreeServer(repo.public) as srv:
        for compression in ("xz", "gz"):
            _configure(chroot, repo, srv.url)
            r = run_in_chroot(chroot, "apt-get", "update",
                              "-o", f"Acquire::CompressionTypes::Order::={compression}")
            assert r.returncode == 0 and "W:" not in r.stdout + r.stderr, r.stdout + r.stderr
            # apt names the download size: it fetched the compression asked for.
            size = (repo.public / f"dists/stable/main/binary-amd64/Packages.{compression}"
                    ).stat().st_size
            assert f"amd64 Packages [{size} B]" in r.stdout, (size, r.stdout)
            r = run_in_chroot(chroot, "apt-cache", "dumpavail")
            got = sorted(ln.split(": ", 1)[1] for ln in r.stdout.splitlines()
                         if ln.startswith("Package: "))
            assert got == sorted(names), (compression, r.stdout)
