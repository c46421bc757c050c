#!/usr/bin/env python3
"""Gigabit Ethernet through the kernel's e1000e vs udriver's (issue 11, acceptance 5): in ONE
guest, two QEMU e1000e (82574L) on one QEMU hub. NIC K is always the kernel's (root network
namespace, 10.11.0.1); NIC U is the kernel's in the first phase and udriver's in the second
(bound to vfio-pci, installed from its wheel and run by `udriver supervise`, unprivileged;
the privileged parent creates its TAP interface, the kernel bridge of ABI 1.1), in
namespace B (10.11.0.2) with the same MAC address either way.

Per phase: ping RTT median and p99 (K -> U, 100 pings, 20 ms apart), iperf3 TCP both ways,
iperf3 UDP at 64-byte frames (18-byte payload) both ways and at 1500-byte IP packets K -> U
(packets per second as received, `packets - lost_packets`), and guest CPU per received UDP
packet (all non-idle time of the guest's one vCPU from /proc/stat: both ends, QEMU's device
emulation excluded). The direct path (no kernel on the udriver side): pktgen on K -> the C
sink on U (RX) and the C generator on U -> K (TX, rate as counted by K's rx_packets); the
kernel column for it is pktgen on K -> U's rx_packets and pktgen on U -> K.

    python3 bench/net.py [--kernel 6.12] [--seconds 4]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from udriver_vm.harness import Guest
from udriver_vm.net import KERNEL_BDF, UDRIVER_BDF, UDRIVER_MAC, install_e1000e, net_qemu_args
from udriver_vm.wheels import build_wheel

ROOT = Path(__file__).resolve().parents[1]

_GUEST = r'''
import json, os, re, statistics, subprocess, sys, time
phase, seconds = sys.argv[1], float(sys.argv[2])
KBDF, UBDF, UMAC, SITE, WHEEL = sys.argv[3:8]
TICK = os.sysconf("SC_CLK_TCK")
B = ["ip", "netns", "exec", "B"]

def sh(cmd, check=True, **kw):
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=check, capture_output=True,
                          text=True, **kw)

def busy():
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (sum(f) - f[3] - f[4]) / TICK

def ifname(bdf):
    for _ in range(100):
        d = f"/sys/bus/pci/devices/{bdf}/net"
        if os.path.isdir(d) and os.listdir(d):
            return os.listdir(d)[0]
        time.sleep(0.1)
    raise SystemExit(f"no interface for {bdf}")

def rx_packets(name, ns=None):
    pre = "ip netns exec B " if ns else ""
    return int(sh(pre + f"cat /sys/class/net/{name}/statistics/rx_packets").stdout)

def wait_ping():
    for _ in range(100):
        if sh("busybox ping -c 1 -W 1 10.11.0.2", check=False).returncode == 0:
            return
    raise SystemExit("10.11.0.2 does not answer")

def pktgen(dev, dst_mac, secs, ns=False):
    pre = "ip netns exec B " if ns else ""
    sh("modprobe pktgen")
    cmds = ["echo rem_device_all > /proc/net/pktgen/kpktgend_0",
            f"echo add_device {dev} > /proc/net/pktgen/kpktgend_0"]
    for c in ("count 0", "pkt_size 60", "delay 0", "clone_skb 1000", f"dst_mac {dst_mac}",
              "dst 10.11.0.99", "udp_dst_min 9", "udp_dst_max 9"):
        cmds.append(f"echo '{c}' > /proc/net/pktgen/{dev}")
    sh(pre + "sh -c " + repr("; ".join(cmds)))
    return subprocess.Popen(pre + f"timeout -s INT {secs} sh -c 'echo start > /proc/net/pktgen/pgctrl'",
                            shell=True)

def iperf(args):
    r = sh(f"iperf3 -c 10.11.0.2 -J -t {seconds:g} " + args, check=False)
    return json.loads(r.stdout)

out = {}
k = ifname(KBDF)
if phase == "kernel":
    sh("modprobe e1000e")
    dev = f"/sys/bus/pci/devices/{UBDF}"
    if os.path.exists(f"{dev}/driver") and os.path.basename(os.readlink(f"{dev}/driver")) != "e1000e":
        open(f"{dev}/driver/unbind", "w").write(UBDF)
    open(f"{dev}/driver_override", "w").write("e1000e")
    if not os.path.exists(f"{dev}/driver"):
        open("/sys/bus/pci/drivers_probe", "w").write(UBDF)
    u = ifname(UBDF)
    sh(f"ip netns add B; ip link set {u} netns B; ip addr add 10.11.0.1/24 dev {k}; "
       f"ip link set {k} up; ip -n B link set lo up; ip -n B addr add 10.11.0.2/24 dev {u}; "
       f"ip -n B link set {u} up")
else:
    u = "e1k0"
    sh(f"ip addr replace 10.11.0.1/24 dev {k}; ip link set {k} up; sleep 3")
    if os.path.exists(f"/sys/bus/pci/devices/{UBDF}/driver"):
        open(f"/sys/bus/pci/devices/{UBDF}/driver/unbind", "w").write(UBDF)
    sh("modprobe vfio-pci")
    open(f"/sys/bus/pci/devices/{UBDF}/driver_override", "w").write("vfio-pci")
    open("/sys/bus/pci/drivers_probe", "w").write(UBDF)
    kmac = open(f"/sys/class/net/{k}/address").read().strip()
    env = dict(os.environ, PYTHONPATH=SITE)
    # The direct path first, while nothing else owns the NIC.
    # The sink first (MSI-X: it sleeps between bursts like NAPI), then pktgen floods it.
    sinkp = subprocess.Popen(["python3", "-m", "udriver_e1000e.perf", "--device", UBDF, "--json",
                              "--irq", "msix", "--seconds", "60", "rx", "--idle", "1"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert json.loads(sinkp.stderr.readline())["event"] == "ready"
    p = pktgen(k, UMAC, seconds)
    p.wait()
    r = subprocess.CompletedProcess(sinkp.args, sinkp.wait(), sinkp.stdout.read(), "")
    j = json.loads(r.stdout)
    out["direct_rx_pps"] = (j["packets"] + j["other"]) / j["seconds"]
    before = rx_packets(k)
    r = sh(["python3", "-m", "udriver_e1000e.perf", "--device", UBDF, "--json",
            "--seconds", str(seconds), "tx", "--dst", kmac], env=env)
    j = json.loads(r.stdout)
    out["direct_tx_pps"] = (rx_packets(k) - before) / j["seconds"]
    out["direct_tx_offered_pps"] = j["pps"]
    # The driver as the system runs it: installed from its wheel, under `udriver
    # supervise` (unprivileged, its own uid); the parent creates the TAP (bridge = "net").
    sh(f"chmod o+x /root; rm -rf /var/lib/udriver /run/udriver; udriver install --wheel {WHEEL}")
    log = open("/tmp/supervise.log", "w")
    bridge = subprocess.Popen(["udriver", "supervise", "--device", UBDF, "--driver", "e1000e"],
                              stdout=log, stderr=subprocess.STDOUT)
    for _ in range(600):
        evs = [json.loads(l) for l in open("/tmp/supervise.log") if l.startswith("{")]
        ready = [e for e in evs if e.get("event") == "ready"]
        if ready:
            break
        time.sleep(0.2)
    assert ready, open("/tmp/supervise.log").read()
    u = ready[0]["ifname"]
    sh(f"ip netns add B; ip link set {u} netns B; ip -n B link set lo up; "
       f"ip -n B addr add 10.11.0.2/24 dev {u}; ip -n B link set {u} up")
time.sleep(1)
wait_ping()
if phase == "kernel":
    p = pktgen(k, UMAC, seconds)
    before, t0 = rx_packets(u, ns=True), time.monotonic()
    p.wait()
    out["direct_rx_pps"] = (rx_packets(u, ns=True) - before) / (time.monotonic() - t0)
    kmac = open(f"/sys/class/net/{k}/address").read().strip()
    p = pktgen(u, kmac, seconds, ns=True)
    before, t0 = rx_packets(k), time.monotonic()
    p.wait()
    out["direct_tx_pps"] = (rx_packets(k) - before) / (time.monotonic() - t0)
    time.sleep(1)
r = sh("busybox ping -c 100 -i 0.02 10.11.0.2", check=False)
rtts = sorted(float(x) for x in re.findall(r"time=([0-9.]+) ms", r.stdout))
out["ping_n"] = len(rtts)
out["rtt_median_ms"] = statistics.median(rtts) if rtts else 0.0
out["rtt_p99_ms"] = rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))] if rtts else 0.0
srv = subprocess.Popen(B + ["iperf3", "-s"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(1)
for name, args in (("tcp_k_to_u", ""), ("tcp_u_to_k", "-R")):
    j = iperf(args)
    out[name + "_mbit"] = j["end"]["sum_received"]["bits_per_second"] / 1e6 if "end" in j else 0.0
for name, args in (("udp64_k_to_u", "-u -b 0 -l 18"), ("udp64_u_to_k", "-u -b 0 -l 18 -R"),
                   ("udp1500_k_to_u", "-u -b 0 -l 1472")):
    b0 = busy()
    j = iperf(args)
    cpu = busy() - b0
    s = j.get("end", {}).get("sum", {})
    got = s.get("packets", 0) - s.get("lost_packets", 0)
    out[name + "_pps"] = got / s["seconds"] if s.get("seconds") else 0.0
    out[name + "_cpu_us_per_pkt"] = cpu * 1e6 / got if got else 0.0
srv.terminate()
srv.wait()
if phase == "udriver":
    bridge.terminate()
    bridge.wait()
    evs = [json.loads(l) for l in open("/tmp/supervise.log") if l.startswith("{")]
    out["bridge"] = [e for e in evs if e.get("event") == "removed"][-1]["bridge"]
print(json.dumps(out))
'''

ROWS = [("TCP K->U Mbit/s", "tcp_k_to_u_mbit", True), ("TCP U->K Mbit/s", "tcp_u_to_k_mbit", True),
        ("UDP 64 K->U pps", "udp64_k_to_u_pps", True), ("UDP 64 U->K pps", "udp64_u_to_k_pps", True),
        ("UDP 1500 K->U pps", "udp1500_k_to_u_pps", True),
        ("CPU us/pkt UDP64 K->U", "udp64_k_to_u_cpu_us_per_pkt", False),
        ("CPU us/pkt UDP64 U->K", "udp64_u_to_k_cpu_us_per_pkt", False),
        ("ping RTT median ms", "rtt_median_ms", False), ("ping RTT p99 ms", "rtt_p99_ms", False),
        ("direct RX pps", "direct_rx_pps", True), ("direct TX pps", "direct_tx_pps", True)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kernel", default="6.12", choices=("6.1", "6.12"))
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--phases", default="kernel,udriver", help="comma-separated, in order")
    p.add_argument("--rounds", type=int, default=3, help="each phase this often (medians)")
    args = p.parse_args(argv)
    if shutil.which("iperf3") is None:
        print("error: iperf3 is not installed on the host (the guest runs the host's; "
              "apt-get install iperf3, or .ci/setup)", file=sys.stderr)
        return 1
    res: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="udriver-bench-net-") as tmp:
        site = install_e1000e(Path(tmp) / "site")
        wheel = build_wheel("e1000e", Path(tmp) / "whl")
        with Guest(kernel=args.kernel, devices=(), qemu_args=net_qemu_args(),
                   cmdline="iommu=pt") as g:
            shutil.copytree(site, g.workdir / "site")
            (g.workdir / wheel.name).write_bytes(wheel.read_bytes())
            (g.workdir / "bench_net.py").write_text(_GUEST)
            g.run("modprobe e1000e", timeout=60, check=True)
            for phase in [p for _ in range(args.rounds) for p in args.phases.split(",")]:
                r = g.run(f"cd /tmp && python3 {g.workdir}/bench_net.py {phase} {args.seconds} "
                          f"{KERNEL_BDF} {UDRIVER_BDF} {UDRIVER_MAC} {g.workdir}/site "
                          f"{g.workdir / wheel.name}",
                          timeout=300 + 30 * args.seconds)
                if r.rc != 0:
                    print(f"error: phase {phase} failed (rc {r.rc}):\n{r.stderr[-3000:]}",
                          file=sys.stderr)
                    return 1
                row = json.loads(r.stdout.strip().splitlines()[-1])
                res.setdefault(phase, []).append(row)
                print(f"{phase}: {row}", file=sys.stderr, flush=True)
                # Namespace B goes (a kernel interface in it returns to the root namespace).
                g.run("ip netns del B; sleep 1", timeout=60, check=True)
    _table(res, args)
    return 0


def _median(rows: list[dict[str, Any]]) -> dict[str, float]:
    keys = {k for row in rows for k, v in row.items() if isinstance(v, (int, float))}
    return {k: statistics.median(float(r.get(k, 0.0)) for r in rows) for k in keys}


def _table(res: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    k, u = _median(res.get("kernel", [])), _median(res.get("udriver", []))
    print(f"\nGigabit Ethernet, two QEMU e1000e on one hub, guest Linux {args.kernel} (TCG, 1 vCPU, "
          f"iommu=pt); {args.seconds:g} s per iperf3/pktgen run; medians of {args.rounds} rounds")
    print(f"{'metric':26s} {'kernel':>12s} {'udriver':>12s} {'ratio':>7s}  (udriver: TAP bridge; "
          "direct rows: C rings)")
    summary = {}
    for label, key, higher in ROWS:
        a, b = float(k.get(key, 0.0)), float(u.get(key, 0.0))
        ratio = (b / a if a else 0.0) if higher else (a / b if b else 0.0)
        print(f"{label:26s} {a:12.1f} {b:12.1f} {ratio:7.2f}")
        summary[key] = {"kernel": round(a, 2), "udriver": round(b, 2), "ratio": round(ratio, 2)}
    print("ratio: udriver / kernel for rates, kernel / udriver for CPU and RTT (> 1: udriver better)")
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
