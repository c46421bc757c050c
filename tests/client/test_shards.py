"""Index shards end to end: a client fetches only the shards of its own devices.

The repository (`udriver_repo.Repository`, served as its static tree on 127.0.0.1)
lists qemu's drivers in `index/1234/<x>.json` by the device ID's last hex digit and in
`index/1234/any.json` for device `*`, and acme's in `index/1af4/...`. A machine with
the edu device (1234:11e8) must download `index/1234/8.json` and `index/1234/any.json`
and nothing else: not qemu's other shards, not acme's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

udriver_repo = pytest.importorskip("udriver_repo", reason="repo-server not installed")

from conftest import BDF, EDU_DEV
from udriver.client import Client, add_repo
from udriver.modalias import parse_modalias
from udriver_vm.fakewheels import make_wheel
from udriver_vm.tufrepo import Server

DEV = {BDF: parse_modalias(EDU_DEV)}


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    d = tmp_path_factory.mktemp("shards")
    repo = udriver_repo.Repository.init(d / "repo")
    repo.add_vendor("qemu", [0x1234])
    repo.add_vendor("acme", [0x1AF4])
    for pkg, drv, mods, vendor in [
        ("udriver-edu", "edu", ["pci:v00001234d000011E8sv*sd*bc*sc*i*"], "qemu"),
        ("udriver-other", "other", ["pci:v00001234d00001111sv*sd*bc*sc*i*"], "qemu"),
        ("udriver-anyq", "anyq", ["pci:v00001234d*sv*sd*bc*sc*i*"], "qemu"),
        ("udriver-virtio", "virtio", ["pci:v00001AF4d00001000sv*sd*bc*sc*i*"], "acme"),
        ("udriver-both", "both", ["pci:v00001234d000022E8sv*sd*bc*sc*i*",
                                  "pci:v00001234d00002221sv*sd*bc*sc*i*"], "qemu"),
    ]:
        repo.publish([make_wheel(d / drv, package=pkg, driver=drv, modaliases=mods)],
                     vendor=vendor)
    try:
        yield d / "repo" / "public"
    finally:
        repo.stop_agent()


@pytest.fixture
def client(sharded: Path, env: Path) -> Iterator[tuple[Client, Path]]:
    server = Server(sharded)
    try:
        add_repo("main", server.url, sharded / "keys" / "root.json")
        yield Client(), env
    finally:
        server.close()


def _cached(env: Path) -> set[str]:
    base = next(env.rglob("targets")) / "index"
    return {p.relative_to(base).as_posix() for p in base.rglob("*.json")}


def test_client_downloads_only_its_devices_shards(client):
    c, env = client
    chosen = c.resolve(DEV)
    assert chosen[BDF] is not None and chosen[BDF].entry.driver == "edu"
    assert _cached(env) == {"1234/8.json", "1234/any.json"}


def test_vendor_search_reads_every_shard_of_that_vendor_only(client):
    c, env = client
    assert sorted(e.driver for e in c.search("1234")) == ["anyq", "both", "edu", "other"]
    assert _cached(env) == {"1234/1.json", "1234/8.json", "1234/any.json"}


def test_device_search_reads_its_shard_and_any(client):
    c, env = client
    assert sorted(e.driver for e in c.search("1234:1111")) == ["anyq", "other"]
    assert sorted(e.driver for e in c.search("1234:2221")) == ["anyq", "both"]
    assert _cached(env) == {"1234/1.json", "1234/any.json"}


def test_install_by_name_widens_to_the_vendors_other_shards(client):
    c, env = client
    assert c.find("other", DEV).driver == "other"  # 1234:1111, not a device here
    assert "1234/1.json" in _cached(env) and not any(n.startswith("1af4/") for n in _cached(env))


def test_a_driver_in_two_shards_is_listed_once(client):
    c, _ = client
    assert sorted(e.driver for e in c.entries({"1234/1", "1234/8"})) == ["both", "edu", "other"]
    assert sorted(e.driver for e in c.entries({0x1234})) == ["anyq", "both", "edu", "other"]


def test_a_per_vendor_index_is_still_read_next_to_shards(tmp_path, env):
    """The first layout, `index/<vvvv>.json` (format 1, a whole vendor), signed by the
    vendor's role: the client reads it as well as the shards of its devices."""
    from _forge import sign_vendor_index

    repo = udriver_repo.Repository.init(tmp_path / "repo")
    try:
        repo.add_vendor("qemu", [0x1234])
        mods = ["pci:v00001234d000011E9sv*sd*bc*sc*i*"]  # shard 9: not this machine's
        repo.publish([make_wheel(tmp_path / "w", package="udriver-old", driver="old",
                                 modaliases=mods)], vendor="qemu")
        sign_vendor_index(repo, "qemu", "1234", ["pci:v00001234d000011E8sv*sd*bc*sc*i*"])
        server = Server(tmp_path / "repo" / "public")
        try:
            add_repo("main", server.url, tmp_path / "repo" / "public" / "keys" / "root.json")
            chosen = Client().resolve(DEV)
            assert chosen[BDF] is not None and chosen[BDF].entry.driver == "old"
            assert chosen[BDF].entry.index == "1234"
        finally:
            server.close()
    finally:
        repo.stop_agent()
