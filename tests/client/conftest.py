"""Fixtures for client tests: isolated config/state dirs, a signed repo on loopback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from udriver_vm.fakewheels import make_wheel
from udriver_vm.tufrepo import Server, TufRepo

EDU = "pci:v00001234d000011E8sv*sd*bc*sc*i*"
EDU_DEV = "pci:v00001234d000011E8sv00001AF4sd00001100bc00scFFi00"
BDF = "0000:00:04.0"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("UDRIVER_CONFIG_DIR", str(tmp_path / "etc"))
    monkeypatch.setenv("UDRIVER_STATE_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("UDRIVER_OFFLINE", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return tmp_path


def entry(w: Path, version: str = "0.1.0", mods: list[str] | None = None,
          driver: str = "edu", package: str = "udriver-edu", abi: str = "1.0",
          vendor: str = "1234") -> dict[str, object]:
    return {"package": package, "driver": driver, "version": version, "abi": abi,
            "modaliases": mods or [EDU], "files": {"wheel": f"drivers/{vendor}/{w.name}"}}


@dataclass
class Published:
    repo: TufRepo
    server: Server
    wheels: Path
    drivers: list[dict[str, object]]

    def publish_edu(self, version: str, *, mods: list[str] | None = None,
                    index_mods: list[str] | None = None, abi: str = "1.0",
                    **wheel_kw: object) -> Path:
        w = make_wheel(self.wheels / version, version=version, modaliases=mods, abi=abi,
                       **wheel_kw)  # type: ignore[arg-type]
        self.repo.add_target("qemu", f"drivers/1234/{w.name}", w.read_bytes())
        self.drivers.append(entry(w, version, index_mods or mods, abi=abi))
        self.repo.add_index("qemu", "1234", self.drivers)
        self.repo.publish()
        return w


@pytest.fixture
def published(env: Path) -> Iterator[Published]:
    repo = TufRepo(env / "repo")
    repo.add_vendor("qemu", [0x1234])
    repo.add_vendor("generic", [0x1b36], class_grant=True)
    server = Server(repo.public)
    p = Published(repo, server, env / "wheels", [])
    p.publish_edu("0.1.0")
    try:
        yield p
    finally:
        server.close()


@pytest.fixture
def configured(published: Published) -> Published:
    from udriver.client import add_repo
    add_repo("main", published.server.url, published.repo.path / "root.json")
    return published
