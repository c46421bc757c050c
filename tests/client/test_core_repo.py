"""The client against the project's own repository (`udriver_repo.Repository`), served
as the static tree it is (public/ at "/") on 127.0.0.1: install, upgrade, attacks, and
the TUF conformance entrypoint's init/refresh/download self-check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

udriver_repo = pytest.importorskip("udriver_repo", reason="repo-server not installed")

from conftest import BDF, EDU_DEV
from udriver.client import Client, DriverStore, add_repo
from udriver.errors import PackageError, RepositoryError
from udriver.modalias import parse_modalias
from udriver_vm.fakewheels import make_wheel
from udriver_vm.tufrepo import Server

DEV = {BDF: parse_modalias(EDU_DEV)}


@dataclass
class Core:
    repo: object
    public: Path
    server: Server
    wheels: Path


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Core]:
    d = tmp_path_factory.mktemp("core")
    repo = udriver_repo.Repository.init(d / "repo")
    repo.add_vendor("qemu", [0x1234])
    repo.publish([make_wheel(d / "w1", version="0.1.0")], vendor="qemu")
    server = Server(d / "repo" / "public")
    try:
        yield Core(repo, d / "repo" / "public", server, d)
    finally:
        server.close()
        repo.stop_agent()


@pytest.fixture
def client_env(core: Core, env: Path) -> Path:
    add_repo("main", core.server.url, core.public / "keys" / "root.json")
    return env


def test_install_from_core_repository(core: Core, client_env: Path) -> None:
    [r] = Client().install_for_devices(DEV)
    assert (r.driver, r.version, r.repo, r.devices) == ("edu", "0.1.0", "main", [BDF])
    assert os.readlink(client_env / "var" / "drivers" / "edu" / "current") == "0.1.0"
    # offline, from the cache the install just filled
    c = Client(offline=True)
    assert [e.version for e in c.entries({0x1234})] == ["0.1.0"]


def test_search_core_index(core: Core, client_env: Path) -> None:
    hits = Client().search("1234:11e8")
    assert [(e.driver, e.version, e.files["wheel"]) for e in hits] == [
        ("edu", "0.1.0", "drivers/1234/udriver_edu-0.1.0-py3-none-any.whl")]


def test_mismatching_id_table_refused(core: Core, client_env: Path) -> None:
    # a wheel whose own table claims another device: the index (written by the core from
    # the wheel) is truthful, so resolution simply does not pick it for the edu device;
    # forcing it onto the device is refused by the post-download check.
    w = make_wheel(core.wheels / "other", package="udriver-other", driver="other",
                   modaliases=["pci:v00001234d00001111sv*sd*bc*sc*i*"])
    core.repo.publish([w], vendor="qemu")  # type: ignore[attr-defined]
    c = Client()
    entry = c.find("other", DEV)
    with pytest.raises(PackageError, match=f"does not match device {BDF}"):
        c.install_entry(entry, DEV)
    assert DriverStore().get("other") is None


def test_tampered_wheel_on_server(core: Core, client_env: Path, tmp_path: Path) -> None:
    [f] = list((core.public / "targets" / "drivers" / "1234").glob("*.udriver_edu-0.1.0-*.whl"))
    saved = tmp_path / "saved"
    shutil.copy(f, saved)
    try:
        f.write_bytes(f.read_bytes()[:-10] + b"0123456789")
        with pytest.raises(RepositoryError, match="tampered or corrupt"):
            Client().install_for_devices(DEV)
        assert DriverStore().installed() == []
    finally:
        shutil.copy(saved, f)


def _conf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "udriver.client.conformance", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_conformance_self_check(core: Core, tmp_path: Path) -> None:
    md, td, url = tmp_path / "md", tmp_path / "t", core.server.url
    assert _conf("--metadata-dir", str(md), "init",
                 str(core.public / "keys" / "root.json")).returncode == 0
    r = _conf("--metadata-dir", str(md), "--metadata-url", f"{url}/metadata", "refresh")
    assert r.returncode == 0, r.stderr
    assert {"root.json", "timestamp.json", "snapshot.json", "targets.json"} <= {
        p.name for p in md.iterdir()}
    for name in ("index/1234/8.json", "drivers/1234/udriver_edu-0.1.0-py3-none-any.whl"):
        r = _conf("--metadata-dir", str(md), "--metadata-url", f"{url}/metadata",
                  "--target-name", name, "--target-base-url", f"{url}/targets",
                  "--target-dir", str(td), "download")
        assert r.returncode == 0, r.stderr
        assert (td / name).is_file()
    r = _conf("--metadata-dir", str(md), "--metadata-url", f"{url}/metadata",
              "--target-name", "drivers/5678/nope.whl", "--target-base-url", f"{url}/targets",
              "--target-dir", str(td), "download")
    assert r.returncode == 1 and "no signed target" in r.stderr
