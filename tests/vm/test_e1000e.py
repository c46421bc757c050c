"""The e1000e driver (drivers/e1000e) on QEMU's 82574L, through the direct path (issue 11).

Each kernel gets one guest with two e1000e NICs on one QEMU hub (`udriver_vm.net`): the kernel's
own e1000e driver drives one, udriver the other (bound to vfio-pci). One guest script
(`_net_scripts.DIRECT`) brings the udriver NIC up in MSI-X mode and in polled mode and,
in each, sends stamped frames from the C generator to the kernel NIC (collected by a
packet socket there), receives frames the kernel NIC sends with the C sink, and probes
the receive filters; the tests below each assert one claim of that run. Link (`set_link`
from QMP), the perf tool and the unprivileged run have their own guest commands.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from udriver_vm.net import (
    KERNEL_BDF,
    NIC_IDS,
    UDRIVER_BDF,
    UDRIVER_MAC,
    install_e1000e,
    net_guest,
)
from udriver_vm.net_scripts import DIRECT, LINK, SENDER
from vm._fixtures import require_vm

pytestmark = [pytest.mark.vm, pytest.mark.kernel_subset("6.1", "6.12")]

FRAMES = 2000
NOBODY = 65534


@pytest.fixture(scope="module")
def e1000e_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_e1000e(tmp_path_factory.mktemp("e1000e-site") / "site")


@pytest.fixture(scope="module", params=["6.1", "6.12"])
def net(request: pytest.FixtureRequest, e1000e_site: Path) -> Iterator[dict[str, Any]]:
    """The two-NIC guest, the kernel NIC up; one guest at a time."""
    require_vm(request.param)
    with net_guest(request.param, e1000e_site) as (g, ifname):
        g.run(f"ip link set {ifname} up && for i in $(seq 100); do "
              f"[ $(cat /sys/class/net/{ifname}/carrier 2>/dev/null) = 1 ] && exit 0; "
              "sleep 0.1; done; exit 1", timeout=60, check=True)
        for name, text in (("direct.py", DIRECT), ("link.py", LINK), ("sender.py", SENDER)):
            (g.workdir / name).write_text(text)
        yield {"guest": g, "ifname": ifname, "runs": {}}


def py(ctx: dict[str, Any], args: str, timeout: float = 120) -> Any:
    g = ctx["guest"]
    return g.run(f"cd /tmp && PYTHONPATH={g.workdir}/site timeout {int(timeout)} python3 {args}",
                 timeout=timeout + 30)


def direct_run(ctx: dict[str, Any]) -> dict[str, Any]:
    if "direct" not in ctx["runs"]:
        g = ctx["guest"]
        r = py(ctx, f"{g.workdir}/direct.py {UDRIVER_BDF} {ctx['ifname']} {FRAMES}", timeout=180)
        assert r.rc == 0, f"rc {r.rc}\n{r.stdout}\n{r.stderr}"
        ctx["runs"]["direct"] = json.loads(r.stdout.strip().splitlines()[-1])
    return dict(ctx["runs"]["direct"])


def test_each_nic_has_its_driver_and_iommu_group(net: dict[str, Any]) -> None:
    g = net["guest"]
    for bdf, driver in ((KERNEL_BDF, "e1000e"), (UDRIVER_BDF, "vfio-pci")):
        r = g.run(f"basename $(readlink /sys/bus/pci/devices/{bdf}/driver); "
                  f"ls /sys/bus/pci/devices/{bdf}/iommu_group/devices", timeout=30, check=True)
        assert r.stdout.split() == [driver, bdf]


@pytest.mark.parametrize("mode", ["msix", "poll"])
def test_probe_reads_the_address_and_the_link(net: dict[str, Any], mode: str) -> None:
    probe = direct_run(net)[mode]["probe"]
    # RAL0/RAH0 hold the address after reset; EERD reads the same one from NVM words 0-2.
    assert probe == {"mac": UDRIVER_MAC, "source": "RAL0/RAH0", "nvm": UDRIVER_MAC,
                     "link": True, "speed": 1000}


def test_msix_mode_uses_three_vectors_and_poll_none(net: dict[str, Any]) -> None:
    run = direct_run(net)
    assert run["msix"]["irq_lines"] == [f"vfio-msix[{i}]({UDRIVER_BDF})" for i in range(3)]
    assert run["msix"]["rings"]["rx"]["wakeups"] > 0
    assert run["poll"]["irq_lines"] == []
    assert run["poll"]["rings"]["rx"]["wakeups"] == run["poll"]["rings"]["tx"]["wakeups"] == 0


@pytest.mark.parametrize("mode", ["msix", "poll"])
def test_frames_sent_by_udriver_arrive_at_the_kernel_nic(net: dict[str, Any], mode: str) -> None:
    r = direct_run(net)[mode]
    assert r["to_kernel"]["gen"]["packets"] == FRAMES, r["to_kernel"]
    assert r["to_kernel"]["seqs_ok"] is True, r["to_kernel"]  # all, in order, no duplicate
    assert r["to_kernel"]["kernel_rx_delta"] >= FRAMES
    assert r["stats"]["tx_good"] >= FRAMES  # the 82574's own GPTC counter agrees


@pytest.mark.parametrize("mode", ["msix", "poll"])
def test_frames_sent_by_the_kernel_nic_arrive_at_udriver(net: dict[str, Any], mode: str) -> None:
    r = direct_run(net)[mode]["from_kernel"]
    assert r["kernel_tx_delta"] >= FRAMES
    assert (r["sink"]["packets"], r["sink"]["gaps"]) == (FRAMES, 0), r
    assert r["sink"]["bytes"] == FRAMES * 60
    assert direct_run(net)[mode]["stats"]["rx_good"] >= FRAMES


@pytest.mark.parametrize("mode", ["msix", "poll"])
def test_receive_filters(net: dict[str, Any], mode: str) -> None:
    assert direct_run(net)[mode]["filters"] == {
        "unicast_own": True, "broadcast": True,
        "multicast_unjoined": False, "multicast_joined": True, "multicast_other_group": False,
        "multicast_allmulti": True, "unicast_other": False, "unicast_other_promisc": True,
        "unicast_other_after": False}


@pytest.mark.parametrize("mode", ["msix", "poll"])
def test_link_follows_set_link(net: dict[str, Any], mode: str) -> None:
    g = net["guest"]
    marker = f"{g.workdir}/link-{mode}.txt"
    job = g.run_bg(f"cd /tmp && PYTHONPATH={g.workdir}/site timeout 90 python3 "
                   f"{g.workdir}/link.py {UDRIVER_BDF} {mode} {marker}")

    def lines() -> list[str]:
        try:
            return Path(marker).read_text().split()
        except OSError:
            return []
    deadline = time.monotonic() + 60
    while lines() != ["ready"]:
        assert time.monotonic() < deadline and job.poll() is None, job.poll()
        time.sleep(0.2)
    for up, want in ((False, "False"), (True, "True")):
        assert g.qmp("set_link", name=NIC_IDS["udriver"], up=up).get("return") == {}
        while want not in lines()[1 + (1 if up else 0):]:
            assert time.monotonic() < deadline, lines()
            time.sleep(0.2)
    res = job.wait(60)
    assert res.rc == 0, res.stdout + res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    # [start, link up], then ICR.LSC (MSI-X) or a STATUS.LU change (poll) for down and up,
    # each time with STATUS.LU read back as the new state.
    assert out["events"] == [["start", True], ["change", False, False], ["change", True, True]]
    assert out["link_changes"] == 2


def test_perf_tool_bad_device_is_one_error_line(net: dict[str, Any]) -> None:
    r = py(net, "-m udriver_e1000e.perf --device 0000:00:1f.7 --count 1 tx", timeout=60)
    assert r.rc == 1 and r.stdout == ""
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr


def test_unprivileged_while_traffic_flows(net: dict[str, Any]) -> None:
    """The perf tool's sink as uid 65534 with no capabilities, fed by the kernel NIC."""
    g, ifname = net["guest"], net["ifname"]
    group = g.run(f"basename $(readlink /sys/bus/pci/devices/{UDRIVER_BDF}/iommu_group)",
                  timeout=30, check=True).stdout.strip()
    g.run(f"chmod o+x /root; chown {NOBODY} /dev/vfio/{group}", timeout=30, check=True)
    log, err = f"{g.workdir}/unpriv.json", f"{g.workdir}/unpriv.err"
    job = g.run_bg(f"cd /tmp && ulimit -l unlimited && exec setpriv --reuid={NOBODY} "
                   f"--regid={NOBODY} --clear-groups --inh-caps=-all --bounding-set=-all "
                   f"--no-new-privs env PYTHONPATH={g.workdir}/site python3 -m "
                   f"udriver_e1000e.perf --device {UDRIVER_BDF} --irq msix --json --seconds 60 rx "
                   f"--idle 3 > {log} 2> {err}")
    deadline = time.monotonic() + 60
    while '"ready"' not in (Path(err).read_text() if Path(err).exists() else ""):
        assert time.monotonic() < deadline and job.poll() is None, Path(err).read_text()
        time.sleep(0.2)
    sender = g.run_bg(f"cd /tmp && PYTHONPATH={g.workdir}/site python3 {g.workdir}/sender.py "
                      f"{ifname} {UDRIVER_MAC} 5")
    time.sleep(3)  # frames flowing
    status = g.run(f"cat /proc/{job.pid}/status", timeout=30, check=True).stdout
    st = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    sent_res = sender.wait(60)
    assert sent_res.rc == 0, sent_res.stderr
    sent = json.loads(sent_res.stdout)["sent"]
    res = job.wait(90)
    assert res.rc == 0, res.stderr + Path(err).read_text()
    out = json.loads(Path(log).read_text())
    uids = st["Uid"].split()
    assert uids == [str(NOBODY)] * 4, st["Uid"]
    assert st["CapEff"].strip() == st["CapPrm"].strip() == st["CapBnd"].strip() == "0" * 16
    assert st["NoNewPrivs"].strip() == "1"
    assert st["State"].split()[0] in ("R", "S"), st["State"]
    assert (out["packets"], out["gaps"]) == (sent, 0), out
