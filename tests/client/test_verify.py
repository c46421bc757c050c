"""udriver.client._verify: the ID-table check after download, one test per rejection."""

from __future__ import annotations

import pytest

from udriver.client._verify import check_package
from udriver.errors import PackageError
from udriver.manifest import DriverManifest
from udriver.modalias import parse_modalias
from udriver.repoformat import IndexEntry

EDU = "pci:v00001234d000011E8sv*sd*bc*sc*i*"
DEV = {"0000:00:04.0": parse_modalias("pci:v00001234d000011E8sv00001AF4sd00001100bc00scFFi00")}
OTHER = {"0000:00:05.0": parse_modalias("pci:v00001234d00001111sv00001AF4sd00001100bc00scFFi00")}


def man(**kw: object) -> DriverManifest:
    base: dict[str, object] = {"package": "udriver-edu", "version": "0.1.0", "driver": "edu",
                               "entry_point": "udriver_edu:Driver", "abi": (1, 0),
                               "modaliases": (EDU,)}
    base.update(kw)
    return DriverManifest(**base)  # type: ignore[arg-type]


ENTRY = IndexEntry("udriver-edu", "edu", "0.1.0", (1, 0), (EDU,), {"wheel": "drivers/1234/x.whl"},
                   "1234", "main")


def test_matching_package_passes() -> None:
    check_package(man(), ENTRY, DEV)
    check_package(man(), ENTRY)


@pytest.mark.parametrize("kw,msg", [
    ({"package": "udriver-evil"}, "embedded `package` is 'udriver-evil', the signed index says 'udriver-edu'"),
    ({"driver": "evil"}, "embedded `driver` is 'evil', the signed index says 'edu'"),
    ({"version": "0.2.0"}, "embedded `version` is '0.2.0', the signed index says '0.1.0'"),
    ({"modaliases": ("pci:v00001234d00001111sv*sd*bc*sc*i*",)}, "differs from the signed index's"),
])
def test_manifest_differs_from_index(kw: dict[str, object], msg: str) -> None:
    with pytest.raises(PackageError) as ei:
        check_package(man(**kw), ENTRY)
    assert str(ei.value).startswith("refusing to install udriver-edu 0.1.0: ")
    assert msg in str(ei.value)
    assert ei.value.hint and "nothing was installed" in ei.value.hint


def test_id_table_does_not_match_device() -> None:
    with pytest.raises(PackageError) as ei:
        check_package(man(), ENTRY, OTHER)
    assert ("embedded ID table ['pci:v00001234d000011E8sv*sd*bc*sc*i*'] does not match device "
            "0000:00:05.0 (pci:v00001234d00001111sv00001AF4sd00001100bc00scFFi00)") in str(ei.value)


def test_all_problems_reported_together() -> None:
    with pytest.raises(PackageError) as ei:
        check_package(man(version="9", modaliases=("pci:v00001234d00001111sv*sd*bc*sc*i*",)),
                      ENTRY, DEV)
    msg = str(ei.value)
    assert "`version`" in msg and "differs from" in msg and "does not match device" in msg
