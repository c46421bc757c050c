"""`udriver_repo._plan.plan_publish`: one test per rejection path, and the plans it makes.

Every test here runs with the disk, the database and the network out of reach: the
`no_io` fixture makes `open`, `os.open`, `os.stat`, the `pathlib.Path` readers and
writers, `sqlite3.connect` and `socket.socket` raise. So a test passing proves that the
decision needs nothing but its arguments (the way python-tuf's TrustedMetadataSet
decides over bytes it is handed).
"""

from __future__ import annotations

import builtins
import io
import os
import pathlib
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from tuf.api.metadata import TargetFile
from udriver_repo._errors import AuthError, ConflictError, NameOwnedError, ScopeError
from udriver_repo._plan import Committed, plan_publish
from udriver_repo._types import Vendor
from udriver_repo._validate import Artifact

from udriver.errors import PackageError
from udriver.manifest import DriverManifest
from udriver.repoformat import RESERVED, IndexEntry, encode_index, parse_index

EDU = "pci:v00001234d000011E8sv*sd*bc*sc*i*"
OTHER = "pci:v00008086d000010D3sv*sd*bc*sc*i*"
CLASS = "pci:v*d*sv*sd*bc01sc08i02*"
ACME = Vendor("acme", (0x1234,))
ROLE = "vendor-acme"


class _NoIO(AssertionError):
    pass


@pytest.fixture(autouse=True)
def no_io(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make every way to reach a file, a database or a socket raise."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise _NoIO(f"I/O attempted: {args!r}")

    for mod, name in [(builtins, "open"), (io, "open"), (os, "open"), (os, "stat"),
                      (os, "lstat"), (os, "listdir"), (os, "scandir"), (os, "replace"),
                      (os, "rename"), (os, "mkdir"), (os, "unlink"),
                      (sqlite3, "connect"), (socket, "socket")]:
        monkeypatch.setattr(mod, name, refuse)
    for name in ("open", "read_bytes", "read_text", "write_bytes", "write_text", "stat",
                 "exists", "mkdir", "unlink", "iterdir", "touch"):
        monkeypatch.setattr(pathlib.Path, name, refuse)
    yield


def test_the_fixture_really_refuses_io() -> None:
    with pytest.raises(_NoIO):
        Path("/etc/hostname").read_bytes()
    with pytest.raises(_NoIO):
        open("/etc/hostname")  # noqa: SIM115 - the call itself must fail
    with pytest.raises(_NoIO):
        os.stat("/")


def _manifest(package: str = "udriver-edu", version: str = "0.1.0", driver: str = "edu",
              mods: tuple[str, ...] = (EDU,), abi: tuple[int, int] = (1, 0)) -> DriverManifest:
    return DriverManifest(package, version, driver, f"udriver_{driver}:Driver", abi,
                          tuple(sorted(mods)))


def _wheel(m: DriverManifest | None = None, data: bytes = b"wheel", name: str = "") -> Artifact:
    m = m or _manifest()
    name = name or f"{m.package.replace('-', '_')}-{m.version}-py3-none-any.whl"
    return Artifact(Path(name), "wheel", m, data, version_key=m.version)


def _deb(m: DriverManifest | None = None, data: bytes = b"deb") -> Artifact:
    m = m or _manifest()
    return Artifact(Path(f"udriver-driver-{m.driver}_{m.version}-1_all.deb"), "deb", m, data,
                    control={}, version_key=m.version)


def _free(*names: str) -> dict[str, str | None]:
    return dict.fromkeys(names or ("edu", "udriver-edu"))


FRESH = Committed({}, {}, _free())


# ------------------------------------------------------------------ plans


def test_first_publish_plans_files_index_and_names() -> None:
    plan = plan_publish(FRESH, [_wheel(), _deb()], ACME)
    assert plan.changed
    assert sorted(plan.targets) == [ROLE]
    assert sorted(plan.targets[ROLE]) == [
        "drivers/1234/udriver-driver-edu_0.1.0-1_all.deb",
        "drivers/1234/udriver_edu-0.1.0-py3-none-any.whl", "index/1234/8.json"]
    assert plan.names == ["edu", "udriver-edu"]
    tf, data = plan.files["index/1234/8.json"]
    [e] = parse_index(data, "1234/8")
    assert (e.package, e.version, sorted(e.files)) == ("udriver-edu", "0.1.0", ["deb", "wheel"])
    assert tf.length == len(data)
    assert [d.indexes for d in plan.drivers] == [("index/1234/8.json",)]
    assert [a.kind for a in plan.debs] == ["deb"]


def test_class_wide_driver_goes_to_the_class_role_with_the_publisher_named() -> None:
    grant = Vendor("acme", (0x1234,), class_grant=True)
    m = _manifest("udriver-nvme", driver="nvme", mods=(CLASS,))
    plan = plan_publish(Committed({}, {}, _free("nvme", "udriver-nvme")), [_wheel(m)], grant)
    assert sorted(plan.targets) == ["class"]
    [e] = parse_index(plan.files["index/class.json"][1], "class")
    assert e.vendor == ROLE


def test_republishing_the_same_bytes_changes_nothing() -> None:
    first = plan_publish(FRESH, [_wheel()], ACME)
    committed = Committed(
        {ROLE: {t: tf for t, (tf, _) in first.files.items()}},
        {"1234/8": parse_index(first.files["index/1234/8.json"][1], "1234/8")},
        dict.fromkeys(["edu", "udriver-edu"], ROLE))
    again = plan_publish(committed, [_wheel()], ACME)
    assert not again.changed and again.files == {}
    assert [d.version for d in again.drivers] == ["0.1.0"]


def test_two_drivers_in_one_shard_are_both_listed() -> None:
    a = _manifest("udriver-a", driver="a", mods=(EDU,))
    b = _manifest("udriver-b", driver="b", mods=("pci:v00001234d00000008sv*sd*bc*sc*i*",))
    plan = plan_publish(Committed({}, {}, _free("a", "b", "udriver-a", "udriver-b")),
                        [_wheel(a), _wheel(b)], ACME)
    entries = parse_index(plan.files["index/1234/8.json"][1], "1234/8")
    assert [e.driver for e in entries] == ["a", "b"]


# ------------------------------------------------------------------ rejections


def test_refuses_a_revoked_vendor() -> None:
    with pytest.raises(AuthError, match="vendor 'acme' is revoked"):
        plan_publish(FRESH, [_wheel()], Vendor("acme", (0x1234,), revoked=True))


def test_refuses_nothing_to_publish() -> None:
    with pytest.raises(PackageError, match="nothing to publish"):
        plan_publish(FRESH, [], ACME)


def test_refuses_two_wheels_of_one_version() -> None:
    with pytest.raises(PackageError, match="udriver-edu 0.1.0: more than one wheel"):
        plan_publish(FRESH, [_wheel(), _wheel(data=b"other", name="udriver_edu-0.1.0-py3-none-any.whl")],
                     ACME)


def test_refuses_a_wheel_and_deb_that_disagree() -> None:
    with pytest.raises(PackageError, match="different ID tables"):
        plan_publish(FRESH, [_wheel(), _deb(_manifest(mods=(EDU, "pci:v00001234d00000001sv*sd*bc*sc*i*")))],
                     ACME)


def test_refuses_ids_of_another_pci_vendor() -> None:
    with pytest.raises(ScopeError, match="claims PCI vendor 8086"):
        plan_publish(FRESH, [_wheel(_manifest(mods=(OTHER,)))], ACME)


def test_refuses_class_wide_ids_without_a_grant() -> None:
    with pytest.raises(ScopeError, match="needs a class grant"):
        plan_publish(FRESH, [_wheel(_manifest(mods=(CLASS,)))], ACME)


def test_refuses_a_name_another_vendor_owns() -> None:
    owned = Committed({}, {}, {"edu": "vendor-other", "udriver-edu": None})
    with pytest.raises(NameOwnedError, match="the name `edu` belongs to 'vendor-other'") as e:
        plan_publish(owned, [_wheel()], ACME)
    assert e.value.hint == "rename the driver, or ask the repository's operator"


def test_refuses_a_reserved_name() -> None:
    reserved = Committed({}, {}, {"edu": RESERVED, "udriver-edu": None})
    with pytest.raises(NameOwnedError, match="reserved until the repository's operator"):
        plan_publish(reserved, [_wheel()], ACME)


def test_refuses_a_version_equal_once_normalised() -> None:
    old = TargetFile.from_data("drivers/1234/udriver_edu-0.1.0.0-py3-none-any.whl", b"x",
                               ["sha256"])
    committed = Committed({ROLE: {old.path: old}}, {}, _free())
    with pytest.raises(ConflictError, match="same version as the published"):
        plan_publish(committed, [_wheel()], ACME)


def test_refuses_a_published_file_name_with_other_bytes() -> None:
    target = "drivers/1234/udriver_edu-0.1.0-py3-none-any.whl"
    old = TargetFile.from_data(target, b"the first bytes", ["sha256"])
    committed = Committed({ROLE: {target: old}}, {}, _free())
    with pytest.raises(ConflictError, match="already published with different bytes"):
        plan_publish(committed, [_wheel(data=b"other bytes")], ACME)


def test_refuses_a_version_the_index_lists_with_another_file() -> None:
    listed = IndexEntry("udriver-edu", "edu", "0.1.0", (1, 0), (EDU,),
                        {"wheel": "drivers/1234/udriver_edu-0.1.0-cp311-abi3-linux_x86_64.whl"},
                        "1234/8")
    committed = Committed({}, {"1234/8": [listed]}, _free())
    with pytest.raises(ConflictError, match="udriver-edu 0.1.0 already has a wheel"):
        plan_publish(committed, [_wheel()], ACME)


def test_refuses_a_version_the_index_lists_with_another_id_table() -> None:
    first = plan_publish(FRESH, [_wheel()], ACME)
    tf, _ = first.files["drivers/1234/udriver_edu-0.1.0-py3-none-any.whl"]
    wider = ("pci:v00001234d000011E8sv*sd*bc*sc*i*", "pci:v00001234d000021E8sv*sd*bc*sc*i*")
    listed = IndexEntry("udriver-edu", "edu", "0.1.0", (1, 0), wider,
                        {"wheel": "drivers/1234/udriver_edu-0.1.0-py3-none-any.whl"}, "1234/8")
    committed = Committed({ROLE: {tf.path: tf}}, {"1234/8": [listed]}, _free())
    with pytest.raises(ConflictError, match="different `modaliases`"):
        plan_publish(committed, [_wheel()], ACME)


def test_a_refusal_after_planning_started_leaves_the_committed_state_alone() -> None:
    target = "drivers/1234/udriver_edu-0.1.0-py3-none-any.whl"
    old = TargetFile.from_data(target, b"the first bytes", ["sha256"])
    role_targets = {target: old}
    index = [IndexEntry("udriver-edu", "edu", "0.0.9", (1, 0), (EDU,),
                        {"wheel": "drivers/1234/udriver_edu-0.0.9-py3-none-any.whl"}, "1234/8")]
    committed = Committed({ROLE: role_targets}, {"1234/8": index}, _free())
    before = encode_index("1234/8", index)
    with pytest.raises(ConflictError):
        plan_publish(committed, [_wheel(data=b"other bytes")], ACME)
    assert role_targets == {target: old} and encode_index("1234/8", index) == before
