"""udriver.toolchain._deb: names, versions, Depends, udev rules (pure parts)."""

from __future__ import annotations

import pytest

from udriver.errors import BuildError
from udriver.manifest import DriverManifest
from udriver.toolchain import deb_package_name, deb_version, runtime_depends, udev_rule_lines


def test_package_name() -> None:
    assert deb_package_name("edu") == "udriver-driver-edu"
    assert deb_package_name("my_nic") == "udriver-driver-my-nic"


@pytest.mark.parametrize(("pep440", "debian"), [
    ("1.0.0", "1.0.0-1"), ("1.0rc1", "1.0~rc1-1"), ("2.1.post3", "2.1+post3-1"),
    ("1.0.dev4", "1.0~~dev4-1"), ("1!2.0", "1:2.0-1"), ("1.0a2", "1.0~a2-1"),
])
def test_version(pep440: str, debian: str) -> None:
    assert deb_version(pep440) == debian


def test_version_order_is_preserved() -> None:
    import shutil
    import subprocess
    if shutil.which("dpkg") is None:
        pytest.skip("dpkg not installed")
    for lo, hi in (("1.0.dev1", "1.0a1"), ("1.0a1", "1.0rc1"), ("1.0rc1", "1.0"), ("1.0", "1.0.post1")):
        r = subprocess.run(["dpkg", "--compare-versions", deb_version(lo), "lt", deb_version(hi)], check=False)
        assert r.returncode == 0, (lo, hi)


def test_version_invalid() -> None:
    with pytest.raises(BuildError, match="not a PEP 440 version"):
        deb_version("one")


def test_runtime_depends() -> None:
    assert runtime_depends((1, 0)) == "udriver (>= 0.1), udriver (<< 2)"


def test_runtime_depends_unknown_abi() -> None:
    with pytest.raises(BuildError, match="no udriver runtime is known to provide ABI 3.0"):
        runtime_depends((3, 0))


def test_udev_rules_one_per_pattern() -> None:
    m = DriverManifest("udriver-edu", "1.0", "edu", "e:E", (1, 0),
                       ("pci:v00001234d000011E8sv*sd*bc*sc*i*", "pci:v00001234d000011E9sv*sd*bc*sc*i*"))
    assert udev_rule_lines(m) == [
        ('ACTION=="add", SUBSYSTEM=="pci", ENV{MODALIAS}=="pci:v00001234d000011E8sv*sd*bc*sc*i*", '
         'RUN+="/usr/bin/udriver autobind --driver edu $kernel"'),
        ('ACTION=="add", SUBSYSTEM=="pci", ENV{MODALIAS}=="pci:v00001234d000011E9sv*sd*bc*sc*i*", '
         'RUN+="/usr/bin/udriver autobind --driver edu $kernel"'),
    ]
