"""`udriver run` started as root: it opens the device, drops to the device's own uid with
no capabilities, and only then execs the runner (which imports the vendor's code).

The drop is real (these tests need root); it happens in a forked child so that pytest
keeps its privileges, and the child's final `execv` is replaced by a report of what the
process would have exec'd, as whom, with which fds. The VFIO nodes are a fake tree
(`UDRIVER_SYSFS_ROOT`); the real device is in tests/vm/test_two_vendors.py.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest

from udriver.cli import main

BDF, OTHER = "0000:01:00.0", "0000:02:00.0"
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")


def status_fields(text: str) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


@pytest.fixture
def fake_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "root"
    for bdf, group in ((BDF, 7), (OTHER, 8)):
        g = root / f"sys/kernel/iommu_groups/{group}"
        g.mkdir(parents=True)
        d = root / "sys/bus/pci/devices" / bdf
        d.mkdir(parents=True)
        (d / "iommu_group").symlink_to(f"../../../../kernel/iommu_groups/{group}")
        (root / "dev/vfio").mkdir(parents=True, exist_ok=True)
        (root / f"dev/vfio/{group}").write_text(f"group {group}")
    (root / "dev/vfio/vfio").write_text("container")
    monkeypatch.setenv("UDRIVER_SYSFS_ROOT", str(root))
    monkeypatch.setenv("UDRIVER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("UDRIVER_DRIVER_UIDS", raising=False)
    return root


def run_as_root_in_child(*argv: str) -> dict[str, Any]:
    """`udriver run ARGV` in a forked child whose exec is replaced by a report."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        os.close(r)
        report: dict[str, Any] = {}

        def fake_execv(path: str, args: list[str]) -> None:
            report["argv"] = args
            report["status"] = Path("/proc/self/status").read_text()
            fds = {a: int(b) for a, b in itertools.pairwise(args)
                   if a in ("--container-fd", "--group-fd")}
            report["fds"] = {k: os.pread(fd, 100, 0).decode() for k, fd in fds.items()}
            report["inheritable"] = all(os.get_inheritable(fd) for fd in fds.values())
            raise SystemExit(0)

        os.execv = fake_execv  # type: ignore[assignment]
        try:
            report["rc"] = main(["run", *argv])
        except SystemExit as e:
            report.setdefault("rc", e.code)
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            report["error"] = repr(e)
        os.write(w, json.dumps(report).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        data = f.read()
    os.waitpid(pid, 0)
    return dict(json.loads(data))


@root_only
def test_root_opens_the_device_then_drops_to_the_device_uid(fake_root: Path, tmp_path: Path,
                                                            ) -> None:
    rep = run_as_root_in_child("--device", BDF, "--driver", "edu", "--option", "k=v", "--once")
    assert "error" not in rep, rep["error"]
    st = status_fields(rep["status"])
    uid = json.loads((tmp_path / "state/driver-uids.json").read_text())[BDF]
    assert st["Uid"].split() == [str(uid)] * 4 and st["Gid"].split() == [str(uid)] * 4
    assert 90000 <= uid <= 99999
    assert st["Groups"].strip() == ""
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert st[cap] == "0000000000000000", cap
    assert st["NoNewPrivs"] == "1"
    # The fds opened as root survive the drop and are handed to the runner.
    assert rep["fds"] == {"--container-fd": "container", "--group-fd": "group 7"}
    assert rep["inheritable"]
    argv = rep["argv"]
    assert argv[3:6] == ["run", "--device", BDF]
    assert argv[-5:] == ["--driver", "edu", "--option", "k=v", "--once"]


@root_only
def test_two_devices_run_as_two_uids(fake_root: Path) -> None:
    a = status_fields(run_as_root_in_child("--device", BDF, "--driver", "edu")["status"])
    b = status_fields(run_as_root_in_child("--device", OTHER, "--driver", "edu")["status"])
    again = status_fields(run_as_root_in_child("--device", BDF, "--driver", "edu")["status"])
    assert a["Uid"] != b["Uid"]
    assert again["Uid"] == a["Uid"]


@root_only
def test_root_with_fds_is_refused(fake_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["run", "--device", BDF, "--driver", "edu", "--container-fd", "5",
               "--group-fd", "6"])
    out, err = capsys.readouterr()
    assert (rc, out) == (1, "")
    assert err == ("error: refusing to run driver 'edu' as root: `--container-fd`/`--group-fd`/"
                   "`--bridge-fd` are for the unprivileged process a privileged parent starts (uid 0 here)\n"
                   "hint: run `udriver run` as root without them (it drops to the device's uid "
                   "after opening it), or use `udriver supervise` or udriver@<BDF>.service\n")


@root_only
def test_root_without_a_device_node_never_drops_or_execs(
        fake_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (fake_root / "dev/vfio/7").unlink()
    rc = main(["run", "--device", BDF, "--driver", "edu"])
    out, err = capsys.readouterr()
    assert (rc, out) == (1, "")
    assert err.startswith(f"error: {BDF}: cannot open ") and "vfio/7: No such file" in err
    assert os.geteuid() == 0
