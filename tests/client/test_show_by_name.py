"""`udriver show NAME` on a machine without the device (issue 13).

It failed until a `search` by PCI ID had filled the cache: `show` looked only in the
indexes of this machine's devices and in those already cached. Now the name's signed
owner record (`names/<name>`) names the vendor role, and that role's signed delegation
its PCI vendors, whose indexes list the driver. Against the project's own repository
core (`udriver_repo.Repository`), served as its static tree on 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

udriver_repo = pytest.importorskip("udriver_repo", reason="repo-server not installed")

from udriver.client import Client, add_repo
from udriver.errors import InstallError
from udriver_vm.fakewheels import make_wheel
from udriver_vm.tufrepo import Server


@pytest.fixture
def served(env: Path) -> Iterator[Path]:
    repo = udriver_repo.Repository.init(env / "repo")
    repo.add_vendor("qemu", [0x1234])
    repo.add_vendor("acme", [0x1AF4, 0x8086])
    repo.publish([make_wheel(env / "w1", version="0.1.0")], vendor="qemu")
    repo.publish([make_wheel(env / "w2", version="0.2.0")], vendor="qemu")
    repo.publish([make_wheel(env / "w3", package="udriver-acme", driver="acme",
                             modaliases=["pci:v00008086d00001234sv*sd*bc*sc*i*"])],
                 vendor="acme")
    server = Server(env / "repo" / "public")
    add_repo("main", server.url, env / "repo" / "public" / "keys" / "root.json")
    try:
        yield env
    finally:
        server.close()
        repo.stop_agent()


def test_show_finds_a_driver_for_no_local_device(served: Path) -> None:
    versions, inst = Client().show("edu", {})
    assert [(e.driver, e.version, e.repo) for e in versions] == [("edu", "0.1.0", "main"),
                                                                  ("edu", "0.2.0", "main")]
    assert inst is None
    versions, _ = Client().show("udriver-acme", {})  # by distribution name too
    assert [(e.driver, e.signer) for e in versions] == [("acme", "vendor-acme")]


def test_show_offline_after_an_online_show(served: Path) -> None:
    online = Client().show("edu", {})[0]
    assert Client(offline=True).show("edu", {})[0] == online


def test_show_of_a_name_nobody_owns_is_not_found(served: Path) -> None:
    with pytest.raises(InstallError, match="nosuch"):
        Client().show("nosuch", {})


def test_install_does_not_widen_to_other_vendors(served: Path) -> None:
    """Only `show` looks a name up for a machine without its device; `install` still
    installs for this machine's devices (none here)."""
    with pytest.raises(InstallError):
        Client().find("edu", {})


def test_udriver_show_without_the_device(served: Path, tmp_path: Path) -> None:
    sysfs = tmp_path / "sysfs"
    (sysfs / "sys/bus/pci/devices").mkdir(parents=True)  # a machine with no PCI device
    env = dict(os.environ, UDRIVER_SYSFS_ROOT=str(sysfs))
    r = subprocess.run([sys.executable, "-c", "from udriver.cli import run; run()", "show",
                        "edu"], env=env, capture_output=True, text=True, timeout=120,
                       check=False)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "driver:    edu"
    assert lines[1] == "package:   udriver-edu"
    assert lines[2] == "versions:  0.1.0 (ABI 1.0), 0.2.0 (ABI 1.0)"
    assert lines[3] == "devices:   pci:v00001234d000011E8sv*sd*bc*sc*i*"
    assert lines[-2:] == ["repo:      main", "installed: no"]



def test_role_vendors_from_every_bin(served: Path) -> None:
    """acme's two vendor IDs fall in different hash bins, each delegating acme with the
    paths of one ID; both are found. A role nobody delegates is None."""
    remote = Client().remotes[0]
    assert remote.role_vendors("vendor-acme") == [0x1AF4, 0x8086]
    assert remote.role_vendors("vendor-qemu") == [0x1234]
    assert remote.role_vendors("vendor-nobody") is None
