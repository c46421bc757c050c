"""udriver.toolchain._wheelfile: manifest embedding, RECORD, reproducible zip."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest

from udriver.artifacts import read_wheel
from udriver.errors import BuildError
from udriver.manifest import DriverManifest
from udriver.toolchain._wheelfile import rewrite_wheel, zip_date

M = DriverManifest("udriver-edu", "1.0.0", "edu", "udriver_edu:EduDriver", (1, 0),
                   ("pci:v00001234d000011E8sv*sd*bc*sc*i*",))
DI = "udriver_edu-1.0.0.dist-info"


def _src(tmp: Path, date: tuple[int, int, int, int, int, int], order: list[str]) -> Path:
    p = tmp / f"src-{date[0]}.whl"
    files = {"udriver_edu/__init__.py": b"x = 1\n", f"{DI}/METADATA": b"Name: udriver-edu\n",
             f"{DI}/RECORD": b"stale\n", "udriver_edu/tool.sh": b"#!/bin/sh\n"}
    with zipfile.ZipFile(p, "w") as zf:
        for n in order:
            zi = zipfile.ZipInfo(n, date_time=date)
            zi.external_attr = (0o100775 if n.endswith(".sh") else 0o100600) << 16
            zf.writestr(zi, files[n])
    return p


def test_reproducible_and_normalised(tmp_path: Path) -> None:
    names = ["udriver_edu/__init__.py", f"{DI}/METADATA", f"{DI}/RECORD", "udriver_edu/tool.sh"]
    a = _src(tmp_path, (2020, 1, 1, 0, 0, 0), names)
    b = _src(tmp_path, (2024, 5, 5, 5, 5, 6), list(reversed(names)))
    rewrite_wheel(a, tmp_path / "a.whl", M, 1700000000)
    rewrite_wheel(b, tmp_path / "b.whl", M, 1700000000)
    assert (tmp_path / "a.whl").read_bytes() == (tmp_path / "b.whl").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.whl") as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos][-1] == f"{DI}/RECORD"
        assert {i.date_time for i in infos} == {zip_date(1700000000)}
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in infos}
        assert modes["udriver_edu/tool.sh"] == 0o755 and modes[f"{DI}/METADATA"] == 0o644
        record = zf.read(f"{DI}/RECORD").decode().splitlines()
        for row in record:
            name, digest, size = row.split(",")
            if name.endswith("RECORD"):
                assert (digest, size) == ("", "")
                continue
            data = zf.read(name)
            want = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == (f"sha256={want}", len(data))
    assert read_wheel(tmp_path / "a.whl").manifest == M


def test_zip_date_clamped_to_1980() -> None:
    assert zip_date(0) == (1980, 1, 1, 0, 0, 0)


def test_no_dist_info(tmp_path: Path) -> None:
    p = tmp_path / "x.whl"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("a.py", b"")
    with pytest.raises(BuildError, match="expected one .dist-info directory"):
        rewrite_wheel(p, tmp_path / "y.whl", M, 0)


def test_unreadable(tmp_path: Path) -> None:
    p = tmp_path / "x.whl"
    p.write_bytes(b"nope")
    with pytest.raises(BuildError, match="unreadable wheel"):
        rewrite_wheel(p, tmp_path / "y.whl", M, 0)
