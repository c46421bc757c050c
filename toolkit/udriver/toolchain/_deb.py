"""Turn a built driver wheel into a .deb with dpkg-deb.

Layout of `udriver-driver-<driver>` (Debian policy references in brackets):

    /usr/lib/udriver/drivers/<driver>/          the wheel's files + dist-info (with
                                                entry_points.txt); the runtime adds this
                                                directory to sys.path (udriver.paths)
    /usr/share/udriver/drivers/<driver>.json    the manifest (udriver.manifest)
    /usr/lib/udev/rules.d/60-udriver-<driver>.rules
                                                one `add` rule per modalias pattern
    /usr/share/doc/<package>/copyright          machine-readable [12.5, DEP-5]
    /usr/share/doc/<package>/changelog.Debian.gz                 [12.7]
    DEBIAN/control   with `Modaliases: udriver(...)` (the ubuntu-drivers convention) and
                     `Depends:` on the udriver runtime range that provides the ABI [5.3, 7.1]
    DEBIAN/md5sums

Reproducibility: every mtime is SOURCE_DATE_EPOCH, every mode 0644/0755, owner root
(`dpkg-deb --root-owner-group`), gzip headers carry no name or time, and dpkg-deb
(>= 1.19) sorts the members and takes ar timestamps from SOURCE_DATE_EPOCH.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import subprocess
import time
import zipfile
from email.utils import formatdate
from pathlib import Path

from .._debpolicy import (
    CONTROL_FIELDS,
    DEB_MANIFEST_DIR,
    DRIVER_ROOT,
    PRIORITY,
    SECTION,
    control_depends,
    deb_package_name,
    deb_version,
    modaliases_field,
    runtime_depends,
    udev_rule_lines,
    udev_rules_path,
    udev_rules_text,
)
from ..errors import BuildError
from ..manifest import DriverManifest

__all__ = [
    "DRIVER_ROOT",
    "build_deb",
    "deb_package_name",
    "deb_version",
    "modaliases_field",
    "runtime_depends",
    "udev_rule_lines",
    "udev_rules_path",
]

_COMMON_LICENSES = {"apache-2.0": "Apache-2.0", "gpl-2.0": "GPL-2", "gpl-2.0-only": "GPL-2",
                    "gpl-3.0": "GPL-3", "gpl-3.0-only": "GPL-3", "lgpl-2.1": "LGPL-2.1",
                    "mpl-2.0": "MPL-2.0", "bsd-3-clause": "BSD"}


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


def _extract_wheel(wheel: Path, dest: Path) -> None:
    """Unpack our own wheel; names are still checked, never trusted."""
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            name = info.filename
            parts = name.split("/")
            if name.startswith("/") or any(p in ("..", "") for p in parts[:-1]) or "\\" in name:
                raise BuildError(f"{wheel.name}: unsafe member name {name!r}")
            if info.is_dir():
                continue
            if re.match(r"^[^/]+\.data/", name):
                raise BuildError(f"{wheel.name}: `.data` directories ({name}) cannot be "
                                 "packaged as a driver; keep every file inside the package")
            _write(dest / name, zf.read(info))


def _changelog(pkg: str, version: str, maintainer: str, manifest: DriverManifest,
               epoch: int) -> bytes:
    date = formatdate(epoch, usegmt=False).replace("-0000", "+0000")
    text = (f"{pkg} ({version}) unstable; urgency=medium\n\n"
            f"  * Built by `udriver build` from {manifest.package} {manifest.version}.\n\n"
            f" -- {maintainer}  {date}\n")
    return gzip.compress(text.encode(), compresslevel=9, mtime=0)


def _copyright(manifest: DriverManifest, maintainer: str, license_name: str, epoch: int) -> bytes:
    year = time.gmtime(epoch).tm_year
    lic = license_name.strip() or "UNKNOWN"
    common = _COMMON_LICENSES.get(lic.lower())
    body = (f" On Debian systems, the full text of the license can be found in\n"
            f" /usr/share/common-licenses/{common}." if common
            else " The full license text is distributed with the upstream project.")
    return (f"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
            f"Upstream-Name: {manifest.package}\n\n"
            f"Files: *\nCopyright: {year} {maintainer}\nLicense: {common or lic}\n{body}\n"
            ).encode()


def _control(pkg: str, version: str, arch: str, maintainer: str, summary: str,
             manifest: DriverManifest, installed_kib: int,
             native_glibc: tuple[int, int] | None) -> bytes:
    depends = control_depends(manifest.abi, native_glibc)
    summary = (summary or f"udriver user-mode PCI driver {manifest.driver}").strip()
    summary = summary.rstrip(".")[:72]
    long = [f"User-mode PCI driver `{manifest.driver}` ({manifest.package} {manifest.version}),",
            "run by the udriver runtime as an unprivileged process over VFIO. It",
            f"needs udriver ABI {manifest.abi[0]}.{manifest.abi[1]} and drives devices matching:"]
    long += [f"  {p}" for p in manifest.modaliases]
    values = {"Package": pkg, "Version": version, "Architecture": arch,
              "Maintainer": maintainer, "Installed-Size": str(installed_kib),
              "Depends": depends, "Section": SECTION, "Priority": PRIORITY,
              "Modaliases": modaliases_field(manifest),
              "Description": summary + "\n" + "\n".join(" " + ln for ln in long)}
    # Exactly the fields the acceptance gate allows (udriver._debpolicy), in its order.
    return "".join(f"{k}: {values[k]}\n" for k in CONTROL_FIELDS).encode()


def build_deb(wheel: Path, manifest: DriverManifest, *, maintainer: str, summary: str,
              license_name: str, epoch: int, work: Path, out_dir: Path,
              native_glibc: tuple[int, int] | None) -> Path:
    """Build `<out_dir>/<package>_<version>_<arch>.deb` from the driver's wheel.

    Raises:
        BuildError: no maintainer, an unsafe wheel, or dpkg-deb failed.
    """
    if not re.match(r"^[^<>]+ <[^@<>\s]+@[^@<>\s]+>$", maintainer):
        err = BuildError(f"the .deb needs a maintainer \"Name <email>\", got {maintainer!r}")
        err.hint = 'add authors = [{name = "...", email = "..."}] to [project] in pyproject.toml'
        raise err
    pkg, version = deb_package_name(manifest.driver), deb_version(manifest.version)
    arch = "all"
    if native_glibc is not None:
        arch = subprocess.run(["dpkg", "--print-architecture"], stdout=subprocess.PIPE,
                              text=True, check=True).stdout.strip()
    root = work / "root"
    _extract_wheel(wheel, root / DRIVER_ROOT / manifest.driver)
    _write(root / DEB_MANIFEST_DIR / f"{manifest.driver}.json", manifest.to_json())
    # No maintainer scripts: udev notices the new rules file by itself (see docs/admin.md).
    _write(root / udev_rules_path(manifest.driver), udev_rules_text(manifest))
    doc = root / "usr/share/doc" / pkg
    _write(doc / "copyright", _copyright(manifest, maintainer, license_name, epoch))
    _write(doc / "changelog.Debian.gz", _changelog(pkg, version, maintainer, manifest, epoch))
    files = sorted(p for p in root.rglob("*") if p.is_file())
    md5 = "".join(f"{hashlib.md5(p.read_bytes(), usedforsecurity=False).hexdigest()}  "
                  f"{p.relative_to(root).as_posix()}\n" for p in files)
    dirs = [p for p in root.rglob("*") if p.is_dir()]
    kib = sum((p.stat().st_size + 1023) // 1024 for p in files) + len(dirs)
    debian = root / "DEBIAN"
    _write(debian / "md5sums", md5.encode())
    _write(debian / "control", _control(pkg, version, arch, maintainer, summary, manifest,
                                        kib, native_glibc))
    for p in [root, *root.rglob("*")]:
        if p.is_dir():
            p.chmod(0o755)
        os.utime(p, (epoch, epoch), follow_symlinks=False)
    out = out_dir / f"{pkg}_{version.split(':')[-1]}_{arch}.deb"
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch))
    proc = subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--threads-max=1",
                           "--build", str(root), str(out)],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if proc.returncode:
        raise BuildError(f"dpkg-deb failed for {pkg}: {proc.stdout.strip()}")
    return out
