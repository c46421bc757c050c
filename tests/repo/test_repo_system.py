"""`udriver-repo publish --system`: non-driver debs (udriver itself) into the apt view only."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import pytest

from udriver.errors import PackageError


def _plain_deb(tmp: Path, name: str = "hello-udriver", version: str = "1.0",
               arch: str = "all", filename: str | None = None) -> Path:
    root = tmp / f"{name}-pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "usr/share/doc" / name).mkdir(parents=True)
    (root / "usr/share/doc" / name / "README").write_text("hello\n")
    (root / "DEBIAN/control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\n"
        "Maintainer: udriver maintainers <maintainers@udriver.dev>\n"
        "Description: a test package\n a test package that is not a driver\n")
    out = tmp / (filename or f"{name}_{version}_{arch}.deb")
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(out)], check=True,
                   capture_output=True)
    return out


def test_system_deb_lands_in_apt_view_only(repo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    deb = _plain_deb(tmp_path)
    assert repo.publish_system([deb]) is True
    packages = gzip.decompress(
        (repo.public / "dists/stable/main/binary-amd64/Packages.gz").read_bytes()).decode()
    assert "Package: hello-udriver" in packages
    assert not list((repo.public / "targets").rglob("*hello-udriver*"))  # no TUF target
    assert repo.publish_system([deb]) is False  # same bytes: unchanged
    assert repo.verify().ok


def test_system_refuses_a_driver_package(repo, built_edu: list[Path]) -> None:  # type: ignore[no-untyped-def]
    [deb] = [p for p in built_edu if p.suffix == ".deb"]
    with pytest.raises(PackageError, match="is a driver package: publish it with `--vendor`"):
        repo.publish_system([deb])


def test_system_refuses_a_name_that_disagrees(repo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    deb = _plain_deb(tmp_path, filename="hello-udriver_9.9_all.deb")
    with pytest.raises(PackageError, match=r"disagrees with its control data \(expected "
                                           r"'hello-udriver_1.0_all.deb'\)"):
        repo.publish_system([deb])


def test_system_refuses_non_debs_and_nothing(repo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    whl = tmp_path / "x-1.0-py3-none-any.whl"
    whl.write_bytes(b"PK")
    with pytest.raises(PackageError, match="only .deb files go into the apt view"):
        repo.publish_system([whl])
    with pytest.raises(PackageError, match="nothing to publish"):
        repo.publish_system([])
