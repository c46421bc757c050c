"""TEST FACTORY: driver wheels and .debs member by member, for the acceptance gate's tests.

`valid_wheel_members` / `valid_deb_members` give exactly what `udriver build` writes
for a manifest (the deb through `udriver._debpolicy`, the same source `build_deb` uses),
as editable lists; `write_wheel` / `write_deb` pack any list of members, including
ones no real tool would make (setuid files, devices, `..` names, forged owners, extra
control members), with the standard library's zipfile and tarfile and a 30-line `ar`.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import lzma
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from udriver._debpolicy import (
    CONTROL_FIELDS,
    DEB_MANIFEST_DIR,
    DRIVER_ROOT,
    control_depends,
    deb_package_name,
    deb_version,
    modaliases_field,
    udev_rules_path,
    udev_rules_text,
)
from udriver.manifest import DriverManifest

__all__ = ["EDU", "Member", "control_text", "manifest", "valid_control", "valid_deb_members",
           "valid_wheel_members", "wheel_name", "write_deb", "write_wheel"]

EDU = "pci:v00001234d000011E8sv*sd*bc*sc*i*"


def manifest(driver: str = "edu", version: str = "0.1.0",
             modaliases: tuple[str, ...] = (EDU,), abi: tuple[int, int] = (1, 0)
             ) -> DriverManifest:
    mod = driver.replace("-", "_")
    return DriverManifest(f"udriver-{driver}", version, driver, f"udriver_{mod}:Driver", abi,
                          tuple(sorted(modaliases)))


# ------------------------------------------------------------------------------ wheels


def dist_info(m: DriverManifest) -> str:
    return f"{m.package.replace('-', '_')}-{m.version}.dist-info"


def wheel_name(m: DriverManifest, version: str | None = None) -> str:
    return f"{m.package.replace('-', '_')}-{version or m.version}-py3-none-any.whl"


def valid_wheel_members(m: DriverManifest, metadata_extra: str = "") -> dict[str, bytes]:
    """What a pure-Python `udriver build` wheel holds (without RECORD: `write_wheel` adds it)."""
    di = dist_info(m)
    mod = m.entry_point.split(":")[0]
    return {
        f"{mod}/__init__.py": b"from udriver.runtime import Driver as _D\n\n\nclass Driver(_D):\n"
                              b"    ids = " + repr(list(m.modaliases)).encode() + b"\n",
        f"{di}/METADATA": (f"Metadata-Version: 2.1\nName: {m.package}\nVersion: {m.version}\n"
                           f"Summary: test driver {m.driver}\n{metadata_extra}").encode(),
        f"{di}/WHEEL": b"Wheel-Version: 1.0\nGenerator: udriver-test\nRoot-Is-Purelib: true\n"
                       b"Tag: py3-none-any\n",
        f"{di}/entry_points.txt": f"[udriver.drivers]\n{m.driver} = {m.entry_point}\n".encode(),
        f"{di}/udriver.json": m.to_json(),
    }


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def write_wheel(path: Path, members: dict[str, bytes], *, record_for: DriverManifest | None = None,
                modes: dict[str, int] | None = None, level: int = 6) -> Path:
    """Zip `members` (deflated); with `record_for`, append a true RECORD for them."""
    members = dict(members)
    if record_for is not None:
        di = dist_info(record_for)
        members[f"{di}/RECORD"] = ("\n".join(_record_line(n, d) for n, d in members.items())
                                   + f"\n{di}/RECORD,,\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for name, data in members.items():
            zi = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
            zi.create_system = 3
            zi.external_attr = (modes or {}).get(name, 0o100644) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, data, compresslevel=level)
    return path


# -------------------------------------------------------------------------------- debs


@dataclass
class Member:
    """One tar member of a .deb."""

    name: str
    data: bytes = b""
    kind: str = "file"
    """file, dir, symlink, hardlink, chr, blk, fifo."""
    mode: int | None = None
    uid: int = 0
    gid: int = 0
    uname: str = "root"
    gname: str = "root"
    linkname: str = ""
    pax: dict[str, str] = field(default_factory=dict)


_TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
          "hardlink": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE,
          "fifo": tarfile.FIFOTYPE}


def _dirs(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def valid_deb_members(m: DriverManifest) -> list[Member]:
    """The data.tar members `udriver build` writes for `m`, parents first."""
    pkg = deb_package_name(m.driver)
    base = f"{DRIVER_ROOT}/{m.driver}"
    files: dict[str, bytes] = {f"{base}/{n}": d for n, d in valid_wheel_members(m).items()}
    files[f"{DEB_MANIFEST_DIR}/{m.driver}.json"] = m.to_json()
    files[udev_rules_path(m.driver)] = udev_rules_text(m)
    files[f"usr/share/doc/{pkg}/copyright"] = b"Format: test\n"
    return with_parents([Member(n, d) for n, d in sorted(files.items())])


def with_parents(members: list[Member]) -> list[Member]:
    """Insert every missing parent directory (0755 root) before its first child."""
    out: list[Member] = [Member("./", kind="dir")]
    have = {""}
    for mem in members:
        for d in _dirs(mem.name.removeprefix("./").rstrip("/")):
            if d not in have:
                have.add(d)
                out.append(Member(f"./{d}/", kind="dir"))
        if mem.kind == "dir":
            have.add(mem.name.removeprefix("./").rstrip("/"))
        out.append(mem)
    return out


def valid_control(m: DriverManifest, installed_size: int = 24) -> dict[str, str]:
    desc = (f"test driver {m.driver}\n User-mode PCI driver `{m.driver}`.\n .\n"
            f" Drives {len(m.modaliases)} pattern(s).")
    values = {"Package": deb_package_name(m.driver), "Version": deb_version(m.version),
              "Architecture": "all", "Maintainer": "Test Vendor <test@example.org>",
              "Installed-Size": str(installed_size),
              "Depends": control_depends(m.abi, None), "Section": "misc",
              "Priority": "optional", "Modaliases": modaliases_field(m), "Description": desc}
    return {k: values[k] for k in CONTROL_FIELDS}


def control_text(fields: dict[str, str]) -> bytes:
    return "".join(f"{k}: {v}\n" for k, v in fields.items()).encode()


def _tar(members: list[Member], compression: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT
                      if not any(m.pax for m in members) else tarfile.PAX_FORMAT) as tf:
        for mem in members:
            info = tarfile.TarInfo(mem.name if mem.name.startswith(("./", "/")) or mem.name == "."
                                   else "./" + mem.name)
            info.type = _TYPES[mem.kind]
            info.mode = mem.mode if mem.mode is not None else (0o755 if mem.kind == "dir"
                                                               else 0o644)
            info.uid, info.gid, info.uname, info.gname = mem.uid, mem.gid, mem.uname, mem.gname
            info.mtime = 1577836800
            info.linkname = mem.linkname
            info.pax_headers = dict(mem.pax)
            if mem.kind == "file":
                info.size = len(mem.data)
                tf.addfile(info, io.BytesIO(mem.data))
            else:
                tf.addfile(info)
    raw = buf.getvalue()
    if compression == "gz":
        return gzip.compress(raw, mtime=0)
    if compression == "xz":
        return lzma.compress(raw)
    return raw


def ar(members: list[tuple[str, bytes]]) -> bytes:
    """An `ar` archive (ar(5), the common format dpkg-deb writes)."""
    out = io.BytesIO()
    out.write(b"!<arch>\n")
    for name, data in members:
        out.write(f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode())
        out.write(data + (b"\n" if len(data) % 2 else b""))
    return out.getvalue()


def md5sums(members: list[Member]) -> bytes:
    return "".join(f"{hashlib.md5(mem.data).hexdigest()}  {mem.name.removeprefix('./')}\n"
                   for mem in members if mem.kind == "file").encode()


def write_deb(out_dir: Path, m: DriverManifest, data: list[Member] | None = None, *,
              control: dict[str, str] | bytes | None = None,
              control_extra: list[Member] | None = None, md5: bytes | None = None,
              filename: str | None = None, compression: str = "xz",
              ar_members: list[tuple[str, bytes]] | None = None) -> Path:
    """A .deb for `m`: `data` members (default: the valid ones), `control` fields or raw
    bytes (default: the valid ones), plus `control_extra` members (maintainer scripts...)."""
    data = valid_deb_members(m) if data is None else data
    fields = valid_control(m) if control is None else control
    ctl = fields if isinstance(fields, bytes) else control_text(fields)
    cmembers = [Member("./", kind="dir"), Member("./control", ctl),
                Member("./md5sums", md5sums(data) if md5 is None else md5),
                *(control_extra or [])]
    members = ar_members or [("debian-binary", b"2.0\n"),
                             (f"control.tar.{compression}", _tar(cmembers, compression)),
                             (f"data.tar.{compression}", _tar(data, compression))]
    c = fields if isinstance(fields, dict) else {}
    name = filename or (f"{c.get('Package', 'x')}_{c.get('Version', '0').rpartition(':')[2]}_"
                        f"{c.get('Architecture', 'all')}.deb")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    path.write_bytes(ar(members))
    return path
