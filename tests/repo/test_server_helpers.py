"""Test helpers for the repo-server tests (and the tests of the helpers themselves).

- `make_wheel` / `make_deb`: a TEST FACTORY of minimal driver packages, with the ID table
  where `udriver build` puts it, plus knobs to break them in each way an upload can be bad.
  The debs are built by the real `dpkg-deb`.
- `ServerThread`: the real aiohttp server of `udriver_repo.server`, on 127.0.0.1 and a
  random free port, in a background thread with its own event loop.
- `FakeRepository`: a stand-in for `udriver_repo.Repository` (an interface the project
  owns) used only where a test is about the HTTP layer and not about publishing; it writes
  the same public layout (timestamp -> snapshot -> role -> index target) but signs nothing.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import inspect
import json
import os
import secrets
import shutil
import subprocess
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from udriver.artifacts import read_deb, read_wheel_manifest
from udriver.errors import PackageError, RepositoryError

__all__ = [
    "FakeRepository",
    "ServerThread",
    "copy_repo",
    "make_deb",
    "make_wheel",
    "manifest_json",
]


def manifest_json(package: str, version: str, driver: str, modaliases: list[str]) -> bytes:
    return (json.dumps({"format": 1, "package": package, "version": version, "driver": driver,
                        "entry_point": f"{driver.replace('-', '_')}_drv:Driver", "abi": "1.0",
                        "modaliases": modaliases}, sort_keys=True, indent=2) + "\n").encode()


def _edu_pattern(vendor: int = 0x1234, device: int = 0x11E8) -> str:
    return f"pci:v{vendor:08X}d{device:08X}sv*sd*bc*sc*i*"


def make_wheel(dest: Path, driver: str = "edu", version: str = "0.1.0", *,
               modaliases: list[str] | None = None, package: str | None = None,
               filename: str | None = None, extra: dict[str, bytes] | None = None,
               manifest: bytes | None = None, with_manifest: bool = True) -> Path:
    """A minimal driver wheel (PEP 427 layout) with `udriver.json` in its dist-info."""
    package = package or f"udriver-{driver}"
    dist = package.replace("-", "_")
    di = f"{dist}-{version}.dist-info"
    mods = modaliases or [_edu_pattern()]
    members: dict[str, bytes] = {
        f"{driver.replace('-', '_')}_drv/__init__.py": b"class Driver:\n    ids = ()\n",
        f"{di}/METADATA": f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n".encode(),
        f"{di}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                       b"Tag: py3-none-any\n",
        f"{di}/entry_points.txt": f"[udriver.drivers]\n{driver} = "
                                  f"{driver.replace('-', '_')}_drv:Driver\n".encode(),
    }
    if with_manifest:
        members[f"{di}/udriver.json"] = manifest or manifest_json(package, version, driver, mods)
    members.update(extra or {})
    # A complete, true RECORD (PEP 376/427): the acceptance gate checks every line.
    record = "".join(
        f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()}"
        f",{len(d)}\n" for n, d in members.items()) + f"{di}/RECORD,,\n"
    members[f"{di}/RECORD"] = record.encode()
    path = dest / (filename or f"{dist}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, data in members.items():
            info = zipfile.ZipInfo(n, (2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return path


def make_deb(dest: Path, driver: str = "edu", version: str = "0.1.0", *,
             modaliases: list[str] | None = None, filename: str | None = None,
             with_manifest: bool = True, package: str | None = None) -> Path:
    """A minimal driver deb built with the real dpkg-deb."""
    package = package or f"udriver-driver-{driver}"
    mods = modaliases or [_edu_pattern()]
    root = dest / f"debroot-{secrets.token_hex(4)}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: Test <test@example.org>\nSection: misc\nPriority: optional\n"
        f"Modaliases: udriver({', '.join(mods)})\n"
        f"Description: udriver driver {driver}\n test package\n")
    if with_manifest:
        mdir = root / "usr/share/udriver/drivers"
        mdir.mkdir(parents=True)
        (mdir / f"{driver}.json").write_bytes(
            manifest_json(f"udriver-{driver}", version, driver, mods))
    else:
        (root / "usr/share/doc" / package).mkdir(parents=True)
        (root / "usr/share/doc" / package / "README").write_text("no ID table\n")
    out = dest / (filename or f"{package}_{version}_all.deb")
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(out)],
                   check=True, capture_output=True, env={**os.environ, "SOURCE_DATE_EPOCH": "0"})
    shutil.rmtree(root)
    return out


def copy_repo(template_path: Path, dest: Path) -> Path:
    """A private copy of the core's session template repository (conftest `repo_template`:
    vendors qemu=1234, acme=1af4+8086, classy=1b36+class grant), sharing its GnuPG home."""
    shutil.copytree(template_path, dest, symlinks=True,
                    ignore=shutil.ignore_patterns("gnupg", "*.lock", ".#*"))
    (dest / "gnupg").symlink_to(template_path / "gnupg")
    return dest


class ServerThread:
    """The real server of `udriver_repo.server.create_app` on 127.0.0.1:<random port>."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _main(self) -> None:
        from aiohttp import web
        from udriver_repo.server import GuardedRunner

        async def run() -> None:
            # aiohttp >= 3.9 takes shutdown_timeout on the runner, 3.8 on the site
            on_runner = "shutdown_timeout" in inspect.signature(web.BaseRunner.__init__).parameters
            timeout = {"shutdown_timeout": 10}
            # What `serve` runs: header timeout, keep-alive timeout, escaping access log.
            runner = GuardedRunner(self.app, **(timeout if on_runner else {}))
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0, **({} if on_runner else timeout))
            await site.start()
            self.port = runner.addresses[0][1]
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()
            await runner.cleanup()

        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(run())
        except BaseException as e:  # noqa: BLE001 - re-raised by start()
            self._error = e
            self._ready.set()
        finally:
            self._loop.close()

    def start(self) -> ServerThread:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@dataclass
class _FakeVendor:
    name: str
    pci_vendors: tuple[int, ...]
    class_grant: bool = False
    revoked: bool = False


@dataclass
class _PublishResult:
    vendor: str
    unchanged: bool


@dataclass
class FakeRepository:
    """Stand-in for `udriver_repo.Repository` for HTTP-layer tests (see module docstring)."""

    path: Path
    tokens: dict[str, _FakeVendor] = field(default_factory=dict)
    published: dict[tuple[str, str, str], str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(cls, path: Path) -> FakeRepository:
        (path / "public" / "metadata").mkdir(parents=True)
        (path / "state.db").touch()
        return cls(path)

    def add_vendor(self, name: str, pci_vendors: list[int], class_grant: bool = False,
                   token: str | None = None) -> str:
        token = token or secrets.token_urlsafe(16)
        self.tokens[token] = _FakeVendor(name, tuple(pci_vendors), class_grant)
        return token

    def close(self) -> None:
        pass

    def stop_agent(self) -> None:
        pass

    def factory(self, path: Path) -> FakeRepository:
        if path != self.path:
            raise RepositoryError(f"not a repository: {path}")
        return self

    def authenticate(self, token: str) -> _FakeVendor | None:
        return self.tokens.get(token)

    def list_vendors(self) -> list[_FakeVendor]:
        return sorted(self.tokens.values(), key=lambda v: v.name)

    def publish(self, files: list[Path], vendor: str, *,
                record: bool = True) -> _PublishResult:
        from udriver.modalias import parse_pattern

        owner = next(v for v in self.tokens.values() if v.name == vendor)
        with self.lock:
            unchanged = True
            for f in files:
                m = read_wheel_manifest(f) if f.suffix == ".whl" else read_deb(f).manifest
                if m is None:
                    raise PackageError(f"{f.name}: no ID table")
                for p in m.modaliases:
                    if parse_pattern(p).vendor not in owner.pci_vendors:
                        from udriver_repo import ScopeError
                        raise ScopeError(f"{p} is outside {vendor}'s scope")
                key = (m.package, m.version, f.suffix)
                digest = hashlib.sha256(f.read_bytes()).hexdigest()
                old = self.published.get(key)
                if old is not None and old != digest:
                    from udriver_repo import ConflictError
                    raise ConflictError(f"{m.package} {m.version} exists with other bytes")
                if old is None:
                    unchanged = False
                    self.published[key] = digest
            return _PublishResult(vendor, unchanged)


# -------------------------------------------------------------- the factory's own tests


def test_factory_wheel_is_read_by_artifacts(tmp_path: Path) -> None:
    m = read_wheel_manifest(make_wheel(tmp_path))
    assert (m.package, m.version, m.driver) == ("udriver-edu", "0.1.0", "edu")


def test_factory_deb_is_read_by_artifacts(tmp_path: Path) -> None:
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed (apt package dpkg)")
    info = read_deb(make_deb(tmp_path))
    assert info.control["Package"] == "udriver-driver-edu"
    assert info.manifest is not None and info.manifest.driver == "edu"


def test_factory_wheel_without_manifest_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="udriver.json"):
        read_wheel_manifest(make_wheel(tmp_path, with_manifest=False))

