"""Privilege separation: the real drop (needs root), and fd hand-over across exec."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from udriver.errors import DeviceError
from udriver.supervise import (
    Credentials,
    PrivilegeError,
    _privsep,
    drop_privileges,
    open_vfio,
    resolve_user,
)

BDF = "0000:01:00.0"
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")


def status_fields(text: str) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


@pytest.fixture
def fake_vfio(tmp_path: Path) -> Path:
    sysfs, dev = tmp_path / "sys", tmp_path / "dev"
    groups = sysfs / "kernel/iommu_groups/7"
    groups.mkdir(parents=True)
    d = sysfs / "bus/pci/devices"
    d.mkdir(parents=True)
    (d / BDF).mkdir()
    (d / BDF / "iommu_group").symlink_to("../../../../kernel/iommu_groups/7")
    (dev / "vfio").mkdir(parents=True)
    (dev / "vfio/vfio").write_text("container")
    (dev / "vfio/7").write_text("group 7")
    return tmp_path


def test_resolve_user_names_an_existing_user() -> None:
    pw = pwd.getpwnam("nobody")
    assert resolve_user("nobody") == Credentials(pw.pw_uid, pw.pw_gid, "nobody")


def test_resolve_user_refuses_root() -> None:
    with pytest.raises(PrivilegeError, match="refusing to run a driver as user 'root'"):
        resolve_user("root")


def test_resolve_user_unknown_name() -> None:
    with pytest.raises(PrivilegeError, match="driver user 'no-such-user-xyz' does not exist"):
        resolve_user("no-such-user-xyz")


def test_drop_to_root_refused() -> None:
    with pytest.raises(PrivilegeError, match="refusing to drop privileges to root"):
        drop_privileges(Credentials(0, 0, "root"))


@root_only
def test_drop_privileges_leaves_no_uid_0_and_no_capabilities() -> None:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            drop_privileges(Credentials(65534, 65534, "nobody"), memlock=64 << 20)
            import resource
            out = Path("/proc/self/status").read_text()
            out += f"Memlock:\t{resource.getrlimit(resource.RLIMIT_MEMLOCK)}\n"
            try:
                os.setuid(0)
                out += "Regained:\tyes\n"
            except PermissionError:
                out += "Regained:\tno\n"
        except BaseException as e:  # noqa: BLE001 - report, never fall through into pytest
            out = f"Error:\t{e!r}\n"
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        text = f.read()
    os.waitpid(pid, 0)
    st = status_fields(text)
    assert "Error" not in st, st.get("Error")
    assert st["Uid"].split() == ["65534"] * 4
    assert st["Gid"].split() == ["65534"] * 4
    assert st["Groups"].strip() == ""
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert st[cap] == "0000000000000000", cap
    assert st["NoNewPrivs"] == "1"
    soft, hard = eval(st["Memlock"])
    assert soft >= 64 << 20 or soft == hard  # hard limit only rises with CAP_SYS_RESOURCE
    assert st["Regained"] == "no"


def test_open_vfio_opens_container_and_group(fake_vfio: Path) -> None:
    fds = open_vfio(BDF, fake_vfio)
    try:
        assert fds.group_number == 7
        assert os.read(fds.container, 100) == b"container"
        assert os.read(fds.group, 100) == b"group 7"
        assert not os.get_inheritable(fds.group)
    finally:
        fds.close()


def test_open_vfio_without_iommu_group(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match=f"{BDF}: no IOMMU group"):
        open_vfio(BDF, tmp_path)


def test_open_vfio_group_node_missing(fake_vfio: Path) -> None:
    (fake_vfio / "dev/vfio/7").unlink()
    with pytest.raises(DeviceError, match=r"cannot open .*/vfio/7: No such file"):
        open_vfio(BDF, fake_vfio)


def test_runner_command_passes_fds() -> None:
    cmd = _privsep.runner_command(BDF, "edu", _privsep.VfioFds(5, 6, 7))
    assert cmd[3:] == ["run", "--device", BDF, "--container-fd", "5", "--group-fd", "6",
                       "--driver", "edu"]


def test_runner_command_passes_options_and_once() -> None:
    cmd = _privsep.runner_command(BDF, "edu", _privsep.VfioFds(5, 6, 7),
                                  ["--option", "a=b", "--once"])
    assert cmd[-5:] == ["--driver", "edu", "--option", "a=b", "--once"]


@root_only
def test_spawn_driver_child_has_fds_and_no_privileges(
        fake_vfio: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The exec'd program (here bash) inherits exactly the two fds, unprivileged."""
    def fake_cmd(bdf: str, driver: str | None, fds: _privsep.VfioFds,
                 *rest: object) -> list[str]:
        return ["/bin/bash", "-c", (f"cat /proc/self/status; cat <&{fds.container}; echo; "
                                 f"cat <&{fds.group}; echo; ls /proc/self/fd")]
    monkeypatch.setattr(_privsep, "runner_command", fake_cmd)
    out = tmp_path / "out"
    with open(out, "wb") as f:
        proc = _privsep.spawn_driver(BDF, "edu", Credentials(65534, 65534, "nobody"),
                                     root=fake_vfio, stdout=f.fileno())
        assert proc.wait(10) == 0
    text = out.read_text()
    st = status_fields(text)
    assert st["Uid"].split()[0] == "65534" and st["CapEff"] == "0000000000000000"
    assert st["CapBnd"] == "0000000000000000"
    assert "container\ngroup 7\n" in text


def test_spawn_driver_with_a_bridge_passes_the_channel_and_serves_it(
        fake_vfio: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A driver declaring a bridge inherits a third fd, a seqpacket socket whose other end
    a BridgeHost serves; waiting for the driver tears the host down."""
    seen: list[int | None] = []

    def fake_cmd(bdf: str, driver: str | None, fds: _privsep.VfioFds,
                 extra: object = (), bridge_fd: int | None = None) -> list[str]:
        seen.extend([fds.container, fds.group, bridge_fd])
        return ["/bin/bash", "-c", f"readlink /proc/self/fd/{bridge_fd}; ls /proc/self/fd"]
    hosts: list[object] = []

    class Host(_privsep.BridgeHost):
        def __init__(self, bdf: str, declared: str, sock: object) -> None:
            super().__init__(bdf, declared, sock, {})  # type: ignore[arg-type]
            hosts.append(self)
    monkeypatch.setattr(_privsep, "runner_command", fake_cmd)
    monkeypatch.setattr(_privsep, "BridgeHost", Host)
    out = tmp_path / "out"
    with open(out, "wb") as f:
        proc = _privsep.spawn_driver(BDF, "disk", Credentials(65534, 65534, "nobody"),
                                     root=fake_vfio, stdout=f.fileno(), bridge="block")
        assert isinstance(proc, _privsep.BridgedProcess)
        assert proc.wait(10) == 0
    lines = out.read_text().split()
    assert lines[0].startswith("socket:[")
    assert sorted(int(x) for x in lines[1:]) == sorted([0, 1, 2, 3, *seen])  # type: ignore[type-var]
    [host] = hosts
    assert host._closed  # type: ignore[attr-defined]


def test_an_interpreter_the_driver_user_cannot_run_is_a_clear_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13: `supervise`/`run` as root gave a bare PermissionError (a traceback, or
    "permission denied: this needs root") when the driver's uid could not execute the
    interpreter, e.g. a Python under /root (0700)."""
    from udriver.supervise import _privsep

    fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(2)]
    monkeypatch.setattr(_privsep, "open_vfio",
                        lambda bdf, root: _privsep.VfioFds(fds[0], fds[1], 7))
    monkeypatch.setattr(_privsep, "drop_privileges", lambda creds, memlock: None)

    def execv(path: str, argv: list[str]) -> None:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(_privsep.os, "execv", execv)
    creds = _privsep.Credentials(90000, 90000, "udriver-90000")
    with pytest.raises(_privsep.PrivilegeError) as e:
        _privsep.exec_driver("0000:00:03.0", "edu", creds)
    assert str(e.value).startswith("0000:00:03.0: the driver's user udriver-90000 (uid 90000) "
                                   "cannot run ")
    assert str(e.value).endswith(": Permission denied")
    assert e.value.hint is not None and "executable by every user" in e.value.hint
