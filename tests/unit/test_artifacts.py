"""udriver.artifacts: safe, bounded readers for wheels and debs. One test per rejection."""

from __future__ import annotations

import io
import lzma
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from udriver.artifacts import (
    Limits,
    parse_control,
    parse_modaliases_field,
    read_deb,
    read_wheel,
    read_wheel_manifest,
)
from udriver.errors import ManifestError, PackageError
from udriver.manifest import DriverManifest

MANIFEST = DriverManifest("udriver-edu", "0.1.0", "edu", "edu.driver:EduDriver", (1, 0),
                          ("pci:v00001234d000011E8sv*sd*bc*sc*i*",))
DI = "udriver_edu-0.1.0.dist-info"


def _wheel(tmp: Path, members: dict[str, bytes], name: str = "udriver_edu-0.1.0-py3-none-any.whl") -> Path:
    p = tmp / name
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, d in members.items():
            zf.writestr(n, d)
    return p


def _good_members() -> dict[str, bytes]:
    return {"edu/__init__.py": b"", f"{DI}/METADATA": b"Name: udriver-edu\n",
            f"{DI}/entry_points.txt": b"[udriver.drivers]\nedu = edu.driver:EduDriver\n",
            f"{DI}/udriver.json": MANIFEST.to_json()}


def test_wheel_manifest_and_entry_points(tmp_path: Path) -> None:
    info = read_wheel(_wheel(tmp_path, _good_members()))
    assert info.manifest == MANIFEST
    assert info.dist_info == DI
    assert "edu = edu.driver:EduDriver" in info.entry_points
    assert read_wheel_manifest(info.path) == MANIFEST


def test_wheel_without_manifest(tmp_path: Path) -> None:
    m = _good_members()
    del m[f"{DI}/udriver.json"]
    with pytest.raises(PackageError, match=r"no `\*\.dist-info/udriver\.json`"):
        read_wheel(_wheel(tmp_path, m))


def test_wheel_with_two_manifests(tmp_path: Path) -> None:
    m = _good_members()
    m["other-1.dist-info/udriver.json"] = MANIFEST.to_json()
    with pytest.raises(PackageError, match="more than one"):
        read_wheel(_wheel(tmp_path, m))


@pytest.mark.parametrize("bad", ["../evil.py", "/etc/passwd", "edu/../../x", "edu\\..\\x"])
def test_wheel_unsafe_member_name(tmp_path: Path, bad: str) -> None:
    m = _good_members()
    m[bad] = b"x"
    with pytest.raises(PackageError, match="unsafe member name"):
        read_wheel(_wheel(tmp_path, m))


def test_wheel_manifest_bomb(tmp_path: Path) -> None:
    m = _good_members()
    m[f"{DI}/udriver.json"] = b" " * (2 * 1024 * 1024)  # compresses to a few KiB
    with pytest.raises(PackageError, match="larger than"):
        read_wheel(_wheel(tmp_path, m))


def test_wheel_too_many_members(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="too many members"):
        read_wheel(_wheel(tmp_path, _good_members()), Limits(members=3))


def test_wheel_file_too_large(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="archive too large"):
        read_wheel(_wheel(tmp_path, _good_members()), Limits(archive_bytes=100))


def test_wheel_not_a_zip(tmp_path: Path) -> None:
    p = tmp_path / "x.whl"
    p.write_bytes(b"not a zip")
    with pytest.raises(PackageError, match="not a valid wheel"):
        read_wheel(p)


def test_wheel_invalid_manifest(tmp_path: Path) -> None:
    m = _good_members()
    m[f"{DI}/udriver.json"] = b'{"format": 1}'
    with pytest.raises(ManifestError):
        read_wheel(_wheel(tmp_path, m))


def test_wheel_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="cannot read"):
        read_wheel(tmp_path / "absent.whl")


# ---------------------------------------------------------------------------- debs


def _tar(members: list[tuple[str, bytes | None, bytes]]) -> bytes:
    """(name, data or None for a dir, type) -> an uncompressed tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, data, typ in members:
            ti = tarfile.TarInfo(name)
            ti.type = typ
            if data is not None:
                ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _ar(members: list[tuple[str, bytes]]) -> bytes:
    out = b"!<arch>\n"
    for name, data in members:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode()
        out += data + (b"\n" if len(data) % 2 else b"")
    return out


CONTROL = b"Package: udriver-driver-edu\nVersion: 0.1.0-1\nArchitecture: all\n" \
          b"Modaliases: udriver(pci:v00001234d000011E8sv*sd*bc*sc*i*)\nDescription: x\n more\n"


def _deb(tmp: Path, data_members: list[tuple[str, bytes | None, bytes]],
         order: tuple[str, ...] = ("debian-binary", "control.tar.xz", "data.tar.xz")) -> Path:
    control = lzma.compress(_tar([("./control", CONTROL, tarfile.REGTYPE)]))
    data = lzma.compress(_tar(data_members))
    parts = {"debian-binary": b"2.0\n", "control.tar.xz": control, "data.tar.xz": data}
    p = tmp / "x.deb"
    p.write_bytes(_ar([(n, parts[n]) for n in order]))
    return p


def _data_ok() -> list[tuple[str, bytes | None, bytes]]:
    return [("./", None, tarfile.DIRTYPE), ("./usr/", None, tarfile.DIRTYPE),
            ("./usr/share/udriver/drivers/edu.json", MANIFEST.to_json(), tarfile.REGTYPE),
            ("./usr/lib/udev/rules.d/60-udriver-edu.rules", b"# r\n", tarfile.REGTYPE)]


def test_deb_handmade(tmp_path: Path) -> None:
    info = read_deb(_deb(tmp_path, _data_ok()))
    assert info.package == "udriver-driver-edu"
    assert info.control["Description"] == "x\nmore"
    assert info.manifest == MANIFEST
    assert info.modaliases == {"udriver": ["pci:v00001234d000011E8sv*sd*bc*sc*i*"]}
    assert set(info.udev_rules) == {"usr/lib/udev/rules.d/60-udriver-edu.rules"}
    assert info.dirs == ("usr",)


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb not installed")
def test_deb_built_by_dpkg_deb(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_bytes(CONTROL + b"Maintainer: A <a@b.c>\n")
    f = root / "usr/share/udriver/drivers/edu.json"
    f.parent.mkdir(parents=True)
    f.write_bytes(MANIFEST.to_json())
    (root / "DEBIAN/md5sums").write_text(
        subprocess.run(["md5sum", "usr/share/udriver/drivers/edu.json"], cwd=root,
                       stdout=subprocess.PIPE, text=True, check=True).stdout)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(tmp_path / "e.deb")],
                   check=True, stdout=subprocess.DEVNULL)
    info = read_deb(tmp_path / "e.deb")
    assert info.manifest == MANIFEST
    assert info.md5sums == info.files


def test_deb_not_ar(tmp_path: Path) -> None:
    p = tmp_path / "x.deb"
    p.write_bytes(b"PK\x03\x04")
    with pytest.raises(PackageError, match="ar magic"):
        read_deb(p)


def test_deb_wrong_member_order(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="in that order"):
        read_deb(_deb(tmp_path, _data_ok(), ("control.tar.xz", "debian-binary", "data.tar.xz")))


@pytest.mark.parametrize("bad", ["../etc/passwd", "/etc/passwd", "./usr/../../x"])
def test_deb_unsafe_data_name(tmp_path: Path, bad: str) -> None:
    with pytest.raises(PackageError, match="unsafe member name"):
        read_deb(_deb(tmp_path, [*_data_ok(), (bad, b"x", tarfile.REGTYPE)]))


def test_deb_device_node(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="not a file, directory or symlink"):
        read_deb(_deb(tmp_path, [*_data_ok(), ("./dev/mem", None, tarfile.CHRTYPE)]))


def test_deb_bomb(tmp_path: Path) -> None:
    big = [*_data_ok(), ("./usr/big", b"\0" * (4 * 1024 * 1024), tarfile.REGTYPE)]
    with pytest.raises(PackageError, match="unpacks to more than"):
        read_deb(_deb(tmp_path, big), Limits(unpacked_bytes=1024 * 1024))


def test_deb_oversized_manifest(tmp_path: Path) -> None:
    data = [("./usr/share/udriver/drivers/edu.json", b" " * 4096, tarfile.REGTYPE)]
    with pytest.raises(PackageError, match="larger than"):
        read_deb(_deb(tmp_path, data), Limits(small_file_bytes=1024))


def test_deb_duplicate_member(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="twice"):
        read_deb(_deb(tmp_path, [*_data_ok(), ("./usr/lib/udev/rules.d/60-udriver-edu.rules",
                                               b"x", tarfile.REGTYPE)]))


def test_deb_truncated(tmp_path: Path) -> None:
    p = _deb(tmp_path, _data_ok())
    p.write_bytes(p.read_bytes()[:-40])
    with pytest.raises(PackageError, match="past the end"):
        read_deb(p)


def test_control_parsing() -> None:
    assert parse_control("A: 1\nB: x\n y\n\tz\n") == {"A": "1", "B": "x\ny\nz"}


def test_control_repeated_field() -> None:
    with pytest.raises(PackageError, match=r"control:2: field `A` appears twice"):
        parse_control("A: 1\nA: 2\n")


def test_control_bad_line() -> None:
    with pytest.raises(PackageError, match="not a `Field: value` line"):
        parse_control("A: 1\nnonsense\n")


def test_control_leading_continuation() -> None:
    with pytest.raises(PackageError, match="continuation line before any field"):
        parse_control(" x\n")


def test_modaliases_field() -> None:
    got = parse_modaliases_field("udriver(pci:v1*, pci:v2*), nvidia(pci:v10DE*)")
    assert got == {"udriver": ["pci:v1*", "pci:v2*"], "nvidia": ["pci:v10DE*"]}


def test_modaliases_field_malformed() -> None:
    with pytest.raises(PackageError, match="module\\(pattern"):
        parse_modaliases_field("udriver pci:v1*")
