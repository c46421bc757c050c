#!/usr/bin/env python3
"""NVMe throughput, latency and CPU cost (issue 10, acceptance 6): in ONE guest, on the SAME
emulated controller (QEMU `nvme` on a host file), the kernel's `nvme` driver driven by fio,
udriver through the kernel bridge (the namespace as /dev/nbdN, served by the unprivileged
driver under `udriver run` as root, driven by the same fio command), and udriver's direct
path (`udriver_nvme`, the SPDK model) in MSI-X and polled mode.

Workloads (fio's names): sequential read 128 KiB QD32, random read 4 KiB QD32, random write
4 KiB QD32. Per run: MB/s, IOPS, p99 latency (submission to completion; fio `lat`), and guest
CPU time per I/O from /proc/stat (all non-idle time of the guest's one vCPU, so interrupt
and kernel work count for both). The kernel side uses fio with libaio and O_DIRECT on
/dev/nvme0n1. Rounds alternate the order of the paths; the table shows medians over rounds
and each path's ratio to the kernel driver.

`timeouts` counts the kernel driver's "I/O ... timeout" lines in dmesg during the runs (total
over rounds): on the 6.12 guest under TCG the kernel's nvme driver loses completions now
and then, waits its 30 s timeout, aborts and resets the controller, which collapses that
round's IOPS. The kernel row's medians (and so every ratio) use only the rounds without a
timeout when there is one (`clean` says how many rounds that was): a ratio against the
kernel driver's good rounds, never against its collapses. udriver's paths report any stall
as an error instead.

The bridge columns: NBD on both kernels, ublk on 6.12 (docs/storage.md).

    python3 bench/nvme.py [--kernel 6.12] [--rounds 3] [--seconds 3]
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

from udriver.toolchain import build_project
from udriver_vm.harness import Guest, GuestTimeout
from udriver_vm.nvme import install_nvme

ROOT = Path(__file__).resolve().parents[1]

WORKLOADS = [("seqread 128k qd32", "read", 131072, 32),
             ("randread 4k qd32", "randread", 4096, 32),
             ("randwrite 4k qd32", "randwrite", 4096, 32)]
PATHS = ["kernel", "bridge-nbd", "bridge-ublk", "direct-msix", "direct-poll"]
UBLK_KERNELS = ("6.12",)
"""bridge-ublk only where the kernel has ublk_drv (6.1 has not)."""

# Runs in the guest: bind the controller to the path's driver, run every workload, print
# one JSON list. CPU time: /proc/stat "cpu" line, USER_HZ ticks, busy = all but idle+iowait.
_GUEST = r'''
import json, os, subprocess, sys, time
path, bdf, seconds, workloads = sys.argv[1], sys.argv[2], float(sys.argv[3]), json.loads(sys.argv[4])
dev = f"/sys/bus/pci/devices/{bdf}"
TICK = os.sysconf("SC_CLK_TCK")

def busy():
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (sum(f) - f[3] - f[4]) / TICK

def bind(driver):
    if os.path.exists(f"{dev}/driver"):
        if os.path.basename(os.readlink(f"{dev}/driver")) == driver:
            return
        open(f"{dev}/driver/unbind", "w").write(bdf)
    subprocess.run(["modprobe", "vfio-pci" if driver == "vfio-pci" else "nvme"], check=True)
    open(f"{dev}/driver_override", "w").write(driver)
    open("/sys/bus/pci/drivers_probe", "w").write(bdf)

out = []

def timeouts():
    log = subprocess.run(["dmesg"], capture_output=True, text=True).stdout
    return sum(("nvme" in l or "nbd" in l) and "timeout" in l for l in log.splitlines())

def run_fio(node):
    for name, rw, bs, qd in workloads:
        t0 = timeouts()
        b0 = busy()
        r = subprocess.run(["fio", "--name=w", f"--filename={node}", "--direct=1",
                            "--ioengine=libaio", f"--rw={rw}", f"--bs={bs}", f"--iodepth={qd}",
                            f"--runtime={seconds}", "--time_based", "--lat_percentiles=1",
                            "--output-format=json"], check=True, capture_output=True, text=True)
        cpu = busy() - b0
        j = json.loads(r.stdout)["jobs"][0]
        d = j["write" if "write" in rw else "read"]
        ios = d["total_ios"]
        out.append({"workload": name, "mbps": d["bw_bytes"] / 1e6, "iops": d["iops"],
                    "p99_us": d["lat_ns"]["percentile"]["99.000000"] / 1e3,
                    "cpu_us_per_io": cpu * 1e6 / ios if ios else 0.0, "ios": ios,
                    "timeouts": timeouts() - t0})

if path == "kernel":
    bind("nvme")
    node = None
    for _ in range(300):
        names = os.listdir(f"{dev}/nvme") if os.path.isdir(f"{dev}/nvme") else []
        if names and os.path.exists(f"/dev/{names[0]}n1"):
            node = f"/dev/{names[0]}n1"
            break
        time.sleep(0.1)
    assert node, "the kernel nvme driver made no block device"
    run_fio(node)
elif path.startswith("bridge"):
    import signal
    bind("vfio-pci")
    # As root: udriver run opens VFIO, stays the bridge's privileged parent, and the driver
    # (its own uid, no capabilities) serves /dev/nbdN or /dev/ublkbN (`--option block=`).
    drv = subprocess.Popen([sys.executable, "-c", "from udriver.cli import run; run()", "run",
                            "--device", bdf, "--driver", "nvme", "--option",
                            f"block={path.split('-')[1]}"], stdout=subprocess.PIPE, text=True)
    node = None
    for line in drv.stdout:
        ev = json.loads(line) if line.startswith("{") else {}
        if ev.get("event") == "bridge":
            node = ev["device"]
        if ev.get("event") == "ready":
            break
    assert node, "the driver made no block device"
    run_fio(node)
    drv.send_signal(signal.SIGTERM)
    assert drv.wait(120) == 0
else:
    from udriver.runtime import Device
    from udriver_nvme import Controller, JobSpec
    bind("vfio-pci")
    with Device(bdf) as d:
        c = Controller(d, irq=path.split("-")[1], io_depth=64, slots=32, slot_bytes=131072)
        c.start()
        for name, rw, bs, qd in workloads:
            b0 = busy()
            res = c.run(JobSpec(rw=rw, bs=bs, qd=qd, seconds=seconds, latencies=1 << 22))
            cpu = busy() - b0
            s = res.summary()
            assert res.failed == 0, s
            out.append({"workload": name, "mbps": s["mbps"], "iops": s["iops"],
                        "p99_us": s["lat_p99_us"],
                        "cpu_us_per_io": cpu * 1e6 / res.ios if res.ios else 0.0,
                        "ios": res.ios, "timeouts": 0})
        c.shutdown()
print(json.dumps(out))
'''


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kernel", default="6.12", choices=("6.1", "6.12"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--image-mb", type=int, default=512)
    p.add_argument("--iommu", choices=("pt", "dma"), default="pt",
                   help="guest kernel DMA through the (emulated) IOMMU: pt = identity "
                        "(iommu=pt, the kernel driver maps nothing per I/O; default), dma = "
                        "translated (every I/O maps and unmaps through emulated VT-d)")
    args = p.parse_args(argv)
    if shutil.which("fio") is None:
        print("error: fio is not installed on the host (the guest runs the host's; "
              "apt-get install fio, or .ci/setup)", file=sys.stderr)
        return 1
    results: dict[tuple[str, str], dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="udriver-bench-nvme-") as tmp:
        image = Path(tmp) / "disk.img"
        with open(image, "wb") as f:
            f.truncate(args.image_mb << 20)
        site = install_nvme(Path(tmp) / "site")
        wheel = build_project(ROOT / "drivers" / "nvme", out_dir=Path(tmp) / "whl",
                              deb=False).wheel  # with its manifest: bridge = "block"
        cmdline = "iommu=pt" if args.iommu == "pt" else ""
        with Guest(kernel=args.kernel, devices=(), nvme=[str(image)], cmdline=cmdline) as g:
            shutil.copytree(site, g.workdir / "site")
            (g.workdir / "bench_nvme.py").write_text(_GUEST)
            (g.workdir / wheel.name).write_bytes(wheel.read_bytes())
            # The bridge path's driver runs as the device's uid: it must reach the host's
            # Python (under /root) and the installed driver (udriver install).
            g.run(f"set -e; chmod o+x /root; udriver install --wheel {g.workdir / wheel.name}",
                  timeout=600, check=True)
            bdf = g.run("for d in /sys/bus/pci/devices/*; do [ $(cat $d/class) = 0x010802 ] "
                        "&& basename $d; done; true", timeout=30, check=True).stdout.split()[0]
            paths = [p for p in PATHS if p != "bridge-ublk" or args.kernel in UBLK_KERNELS]
            for rnd in range(args.rounds):
                order = paths[rnd % len(paths):] + paths[:rnd % len(paths)]
                for path in order:
                    try:
                        r = g.run(f"cd /tmp && PYTHONPATH={g.workdir}/site python3 "
                                  f"{g.workdir}/bench_nvme.py {path} {bdf} {args.seconds} "
                                  f"'{json.dumps(WORKLOADS)}'", timeout=300 + 10 * args.seconds)
                    except GuestTimeout:
                        if path != "kernel":
                            raise
                        # The kernel driver's 30 s I/O timeouts and resets outlasted the run:
                        # a collapsed round (see the docstring), counted, not in the medians.
                        g.kill_jobs()
                        print(f"  kernel round {rnd + 1}: no result within "
                              f"{300 + 10 * args.seconds:g} s (I/O timeouts); counted as "
                              f"collapsed", file=sys.stderr)
                        for name, *_ in WORKLOADS:
                            cell = results.setdefault((name, path), {})
                            for key in ("mbps", "iops", "p99_us", "cpu_us_per_io"):
                                cell.setdefault(key, []).append(0.0)
                            cell.setdefault("timeouts", []).append(1.0)
                        continue
                    if r.rc != 0:
                        print(f"error: {path} round {rnd + 1} failed (rc {r.rc}):\n{r.stderr}",
                              file=sys.stderr)
                        return 1
                    for row in json.loads(r.stdout.strip().splitlines()[-1]):
                        print(f"  {row['workload']:18s} {path:12s} {row['iops']:9.0f} IOPS "
                              f"{row['mbps']:8.1f} MB/s p99 {row['p99_us']:8.0f} us "
                              f"{row['ios']} I/Os, {row['timeouts']} timeouts", file=sys.stderr)
                        cell = results.setdefault((row["workload"], path), {})
                        for key in ("mbps", "iops", "p99_us", "cpu_us_per_io", "timeouts"):
                            cell.setdefault(key, []).append(float(row[key]))
                    print(f"round {rnd + 1}: {path} done", file=sys.stderr, flush=True)
    _table(results, args)
    return 0


def _table(results: dict[tuple[str, str], dict[str, list[float]]],
           args: argparse.Namespace) -> None:
    med: dict[tuple[str, str], dict[str, float]] = {}
    for k, cell in results.items():
        rounds = range(len(cell["timeouts"]))
        clean = [i for i in rounds if cell["timeouts"][i] == 0] if k[1] == "kernel" else []
        use = clean or list(rounds)  # see the module docstring: the kernel's good rounds
        med[k] = {m: statistics.median(v[i] for i in use) for m, v in cell.items()}
        med[k]["timeouts"] = sum(cell["timeouts"])  # total over rounds, not a median
        med[k]["clean"] = len(use)
    print(f"\nNVMe, one QEMU nvme controller on a {args.image_mb} MiB host file, guest Linux "
          f"{args.kernel} (TCG, 1 vCPU, kernel DMA iommu={args.iommu}); medians of {args.rounds} "
          f"rounds x {args.seconds:g} s (kernel: of its rounds without a timeout, `clean`)")
    print(f"{'workload':18s} {'path':12s} {'MB/s':>8s} {'IOPS':>9s} {'p99 us':>8s} "
          f"{'CPU us/IO':>9s} {'x kernel':>8s} {'timeouts':>8s} {'clean':>5s}")
    summary: dict[str, Any] = {}
    for name, *_ in WORKLOADS:
        base = med.get((name, "kernel"), {}).get("iops", 0.0)
        for path in PATHS:
            m = med.get((name, path))
            if m is None:
                continue
            ratio = m["iops"] / base if base else 0.0
            print(f"{name:18s} {path:12s} {m['mbps']:8.1f} {m['iops']:9.0f} {m['p99_us']:8.0f} "
                  f"{m['cpu_us_per_io']:9.1f} {ratio:8.2f} {m['timeouts']:8.0f} "
                  f"{m['clean']:5.0f}")
            summary[f"{name}/{path}"] = {k: round(v, 1) for k, v in m.items()} | {
                "x_kernel": round(ratio, 2)}
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
