"""One uid per device (`udriver.supervise._uids`): stable, unique, never a taken one."""

from __future__ import annotations

import json
import multiprocessing
import pwd
from pathlib import Path

import pytest

from udriver.errors import ConfigError, DeviceError
from udriver.supervise import PrivilegeError, device_credentials, device_uid
from udriver.supervise._run import driver_user
from udriver.supervise._uids import DEFAULT_RANGE, pick_uid, uid_range

A, B, C = "0000:01:00.0", "0000:02:00.0", "0000:00:03.0"


def never(uid: int) -> bool:
    return False


def test_pick_returns_the_recorded_uid() -> None:
    assert pick_uid(A, {A: 90005, B: 90000}, 90000, 90010, never) == 90005


def test_pick_takes_the_lowest_free_uid() -> None:
    assert pick_uid(C, {A: 90000, B: 90002}, 90000, 90010, never) == 90001


def test_pick_skips_uids_and_gids_the_system_knows() -> None:
    assert pick_uid(A, {}, 90000, 90010, lambda u: u in (90000, 90001)) == 90002


def test_pick_refuses_when_the_range_is_full() -> None:
    with pytest.raises(PrivilegeError, match=r"0000:00:03.0: no free driver uid left in "
                                             r"90000-90001 \(2 recorded devices\)"):
        pick_uid(C, {A: 90000, B: 90001}, 90000, 90001, never)


def test_default_range_avoids_nobody_dynamic_users_and_subuids() -> None:
    first, last = uid_range({})
    assert (first, last) == DEFAULT_RANGE
    assert 65535 < first and last < 100000  # 16-bit uid_t, nobody, DynamicUser / SUB_UID_MIN


def test_range_from_the_environment() -> None:
    assert uid_range({"UDRIVER_DRIVER_UIDS": "70000-70009"}) == (70000, 70009)


@pytest.mark.parametrize("text", ["70000", "a-b", "5-900", "70010-70000", "65000-66000",
                                  "0-10", "65534-65534"])
def test_bad_range_refused(text: str) -> None:
    with pytest.raises(ConfigError, match=f"invalid UDRIVER_DRIVER_UIDS {text!r}"):
        uid_range({"UDRIVER_DRIVER_UIDS": text})


def test_devices_get_distinct_uids_that_stay(tmp_path: Path) -> None:
    a = device_uid(A, state=tmp_path, env={})
    b = device_uid(B, state=tmp_path, env={})
    assert a != b and DEFAULT_RANGE[0] <= min(a, b) and max(a, b) <= DEFAULT_RANGE[1]
    assert device_uid(A, state=tmp_path, env={}) == a  # stable: a restart finds the record
    rec = tmp_path / "driver-uids.json"
    assert json.loads(rec.read_text()) == {A: a, B: b}
    assert rec.stat().st_mode & 0o777 == 0o644
    for uid in (a, b):
        with pytest.raises(KeyError):
            pwd.getpwuid(uid)  # nobody on this machine has it


def test_the_address_is_made_canonical(tmp_path: Path) -> None:
    assert device_uid("0000:01:00.0".upper(), state=tmp_path, env={}) == \
        device_uid("01:00.0", state=tmp_path, env={})


def test_not_an_address(tmp_path: Path) -> None:
    with pytest.raises(DeviceError):
        device_uid("../../etc", state=tmp_path, env={})
    assert not (tmp_path / "driver-uids.json").exists()


def test_read_only_lookup_needs_a_record(tmp_path: Path) -> None:
    with pytest.raises(PrivilegeError, match=f"{A}: no driver uid recorded in "):
        device_uid(A, allocate=False, state=tmp_path, env={})
    uid = device_uid(A, state=tmp_path, env={})
    assert device_uid(A, allocate=False, state=tmp_path, env={}) == uid


def test_a_recorded_uid_is_read_without_writing(tmp_path: Path) -> None:
    """What ExecStart= does: its /var is read-only; the record from ExecStartPre= is enough."""
    uid = device_uid(A, state=tmp_path, env={})
    (tmp_path / "driver-uids.lock").unlink()
    tmp_path.chmod(0o555)
    try:
        assert device_uid(A, state=tmp_path, env={}) == uid
        assert not (tmp_path / "driver-uids.lock").exists()
    finally:
        tmp_path.chmod(0o755)


def test_unlockable_records_refused_for_a_new_device(tmp_path: Path) -> None:
    (tmp_path / "driver-uids.lock").mkdir()  # fails for root too (EISDIR)
    with pytest.raises(PrivilegeError, match=f"{A}: cannot lock the driver uid records in "
                                             f"{tmp_path}: Is a directory"):
        device_uid(A, state=tmp_path, env={})
    assert not (tmp_path / "driver-uids.json").exists()


def test_corrupt_record_refused(tmp_path: Path) -> None:
    (tmp_path / "driver-uids.json").write_text("{not json")
    with pytest.raises(PrivilegeError, match="cannot read the driver uid records"):
        device_uid(A, state=tmp_path, env={})


def test_record_of_the_wrong_shape_refused(tmp_path: Path) -> None:
    (tmp_path / "driver-uids.json").write_text(json.dumps({A: "90000"}))
    with pytest.raises(PrivilegeError, match="invalid driver uid records"):
        device_uid(A, state=tmp_path, env={})


def test_shared_uid_in_the_record_refused(tmp_path: Path) -> None:
    (tmp_path / "driver-uids.json").write_text(json.dumps({A: 90000, B: 90000}))
    with pytest.raises(PrivilegeError, match=r"devices \['0000:01:00.0', '0000:02:00.0'\] "
                                             r"share a uid"):
        device_uid(C, state=tmp_path, env={})


def test_recorded_uid_outside_the_range_refused(tmp_path: Path) -> None:
    device_uid(A, state=tmp_path, env={})
    with pytest.raises(PrivilegeError, match=r"outside 70000-70009"):
        device_uid(A, state=tmp_path, env={"UDRIVER_DRIVER_UIDS": "70000-70009"})


def _allocate(args: tuple[str, str]) -> int:
    bdf, state = args
    return device_uid(bdf, state=Path(state), env={})


def test_concurrent_allocations_never_collide(tmp_path: Path) -> None:
    bdfs = [f"0000:{bus:02x}:00.0" for bus in range(1, 13)]
    with multiprocessing.get_context("fork").Pool(4) as pool:
        uids = pool.map(_allocate, [(b, str(tmp_path)) for b in bdfs])
    assert len(set(uids)) == len(bdfs)
    assert json.loads((tmp_path / "driver-uids.json").read_text()) == dict(zip(bdfs, uids))


def test_credentials_carry_the_uid_as_gid(tmp_path: Path) -> None:
    c = device_credentials(A, state=tmp_path, env={})
    assert c.uid == c.gid != 0 and A in c.name


def test_driver_user_defaults_to_the_device_uid(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UDRIVER_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("USER", "nobody")  # the old fallback must not come back
    a, b = driver_user(A), driver_user(B)
    assert a.uid != b.uid and 65534 not in (a.uid, b.uid)
    assert driver_user(A, "nobody").uid == pwd.getpwnam("nobody").pw_uid
