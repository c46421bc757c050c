"""TEST FACTORY: minimal valid driver wheels and debs, built in milliseconds.

`udriver build` runs pypa/build, auditwheel and dpkg-deb on a real project, which is
too slow for tests that publish dozens of packages. This factory writes a pure-Python
wheel with the same dist-info layout `udriver build` produces (METADATA, WHEEL,
entry_points.txt, udriver.json, RECORD) and turns it into a .deb with the toolchain's
own `build_deb`, so the repository sees what the toolchain really makes.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
import zipfile
from pathlib import Path

from udriver.manifest import DriverManifest

__all__ = ["make_deb", "make_driver", "make_manifest", "make_wheel"]

EDU = "pci:v00001234d000011E8sv*sd*bc*sc*i*"


def make_manifest(package: str = "udriver-edu", version: str = "0.1.0", driver: str = "edu",
                  modaliases: tuple[str, ...] = (EDU,), abi: tuple[int, int] = (1, 0)
                  ) -> DriverManifest:
    mod = driver.replace("-", "_")
    return DriverManifest(package, version, driver, f"udriver_{mod}:Driver", abi,
                          tuple(sorted(modaliases)))


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_wheel(out_dir: Path, m: DriverManifest, extra: bytes = b"") -> Path:
    """A py3-none-any wheel carrying `m` (extra bytes change the content, not the identity)."""
    dist = m.package.replace("-", "_")
    di = f"{dist}-{m.version}.dist-info"
    mod = m.entry_point.split(":")[0]
    members = {
        f"{mod}/__init__.py": (b"from udriver.runtime import Driver as _D\n\n\nclass Driver(_D):\n"
                               b"    ids = " + repr(list(m.modaliases)).encode() + b"\n"
                               + b"# " + extra + b"\n"),
        f"{di}/METADATA": f"Metadata-Version: 2.1\nName: {m.package}\nVersion: {m.version}\n"
                          f"Summary: test driver {m.driver}\n".encode(),
        f"{di}/WHEEL": b"Wheel-Version: 1.0\nGenerator: udriver-test-factory\n"
                       b"Root-Is-Purelib: true\nTag: py3-none-any\n",
        f"{di}/entry_points.txt": f"[udriver.drivers]\n{m.driver} = {m.entry_point}\n".encode(),
        f"{di}/udriver.json": m.to_json(),
    }
    record = "\n".join(_record_line(n, d) for n, d in members.items()) + f"\n{di}/RECORD,,\n"
    members[f"{di}/RECORD"] = record.encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{dist}-{m.version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zi = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, data)
    return path


def make_deb(wheel: Path, m: DriverManifest, out_dir: Path) -> Path:
    """The toolchain's .deb for `wheel` (dpkg-deb)."""
    from udriver.toolchain import build_deb

    with tempfile.TemporaryDirectory(prefix="udr-deb-") as work:
        return build_deb(wheel, m, maintainer="Test Vendor <test@example.org>",
                         summary=f"test driver {m.driver}", license_name="Apache-2.0",
                         epoch=1577836800, work=Path(work), out_dir=out_dir, native_glibc=None)


def make_driver(out_dir: Path, package: str = "udriver-edu", version: str = "0.1.0",
                driver: str = "edu", modaliases: tuple[str, ...] = (EDU,), deb: bool = True,
                extra: bytes = b"") -> tuple[DriverManifest, list[Path]]:
    """Manifest and [wheel, deb] (or [wheel]) for one driver."""
    m = make_manifest(package, version, driver, modaliases)
    w = make_wheel(out_dir, m, extra)
    return m, [w, make_deb(w, m, out_dir)] if deb else [w]
