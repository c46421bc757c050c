#!/usr/bin/env python3
"""The whole udriver chain in one command (`make demo`), on the embedded defaults.

1. `udriver build` the example driver (examples/edu) into a wheel and a .deb;
2. `udriver-repo init` a signed repository (TUF + apt), add the vendor that owns PCI
   vendor 1234, `udriver-repo publish` the driver, and publish udriver's own .debs
   (`dpkg-buildpackage`) into its apt view with `udriver-repo publish --system`;
3. make a Debian 12 system (debootstrap) where `apt-get install udriver` takes udriver
   from that signed apt view (cached after the first run), and boot it in a guest:
   Debian's kernel under QEMU/TCG, q35, intel-iommu, systemd as PID 1;
4. in the guest, serve the repository on its own loopback with `udriver-repo serve`,
   configure the client with the repository's root and auto-install, write udev rules;
5. hot-plug QEMU's edu device (QMP device_add): udev -> udriver-autobind@<BDF>.service ->
   verified install -> bind to vfio-pci -> udriver@<BDF>.service runs the driver,
   unprivileged and sandboxed;
6. show `systemctl status`, `udriver devices`, `udriver status` and the driver's own
   output from `journalctl -u`, then `systemctl stop` it and unplug the device.

Everything listens on loopback; nothing leaves the machine but the Debian mirror fetches
of the first run. Work files go to `--workdir` (default: a temporary directory, removed
afterwards unless --keep).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from udriver_vm.debs import build_udriver_debs
from udriver_vm.harness import Guest, prerequisites_missing
from udriver_vm.hotplug import (
    GuestRepo,
    copy_repo,
    events,
    hotplug,
    journal,
    status,
    unit_props,
    unplug,
    wait_for,
)
from udriver_vm.system import system_root

ROOT = Path(__file__).resolve().parents[1]

VENDOR = "qemu"


def step(n: int, text: str) -> None:
    print(f"\n[{n}/6] {text}", flush=True)


def sh(*cmd: str, env: dict[str, str] | None = None) -> str:
    """Run a host command, echo it and its output; stop the demo if it fails."""
    print("  $ " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    for line in (r.stdout + r.stderr).splitlines():
        print("    " + line)
    if r.returncode != 0:
        raise SystemExit(f"demo: `{' '.join(cmd)}` failed with exit status {r.returncode}")
    return r.stdout


def guest(g: Guest, cmd: str, timeout: float = 300) -> str:
    print(f"  guest# {cmd}", flush=True)
    r = g.run(cmd, timeout=timeout)
    for line in (r.stdout + r.stderr).splitlines():
        print("    " + line)
    if r.rc != 0:
        raise SystemExit(f"demo: guest command failed with exit status {r.rc}: {cmd}")
    return r.stdout


def run(work: Path, kernel: str) -> int:
    missing = prerequisites_missing(kernel)
    if missing:
        print(f"demo: cannot boot a guest: {missing} (run `make setup` first)", file=sys.stderr)
        return 1
    if os.geteuid() != 0:
        print("demo: run it as root (debootstrap and chroot make the guest's Debian system)",
              file=sys.stderr)
        return 1

    step(1, "Building the example driver (examples/edu) with `udriver build`")
    src = work / "edu"
    shutil.copytree(ROOT / "examples/edu", src,
                    ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__"))
    env = dict(os.environ, DEBEMAIL=os.environ.get("DEBEMAIL", "demo@udriver.dev"),
               DEBFULLNAME=os.environ.get("DEBFULLNAME", "udriver demo"))
    sh("udriver", "build", str(src), "-o", str(work / "dist"), env=env)
    artifacts = sorted(str(p) for p in (work / "dist").iterdir())
    sh("udriver", "check", *artifacts)

    step(2, "Creating a signed repository; publishing the driver and udriver's own .debs")
    repo = work / "repo"
    sh("udriver-repo", "init", str(repo))
    sh("udriver-repo", "vendor", "add", VENDOR, "--pci-vendor", "1234", "--repo", str(repo))
    sh("udriver-repo", "publish", "--vendor", VENDOR, "--repo", str(repo), *artifacts)
    print("  $ dpkg-buildpackage -us -uc -b   (udriver and udriver-repo-server)", flush=True)
    debs = build_udriver_debs(work / "debs")
    sh("udriver-repo", "publish", "--system", "--repo", str(repo),
       str(debs["udriver"]), str(debs["udriver-repo-server"]))
    sh("udriver-repo", "verify", "--repo", str(repo))

    step(3, f"Booting Debian 12 with udriver installed by apt from its .deb: Debian's {kernel} "
            "kernel, QEMU TCG, q35 + intel-iommu, systemd as PID 1")
    root = system_root(debs, log=print)
    print(f"  system: {root}", flush=True)
    t0 = time.monotonic()
    with Guest(kernel=kernel, devices=[], root_ports=1, mem_mb=1024, system=root,
               boot_timeout=600) as g:
        print(f"  booted in {time.monotonic() - t0:.1f} s", flush=True)
        guest(g, "ps -o comm= -p 1 2>/dev/null || readlink /proc/1/exe; "
                 "dpkg-query -W udriver udriver-repo-server; systemctl is-system-running")
        shared = copy_repo(repo, g.workdir / "repo")

        step(4, "Serving the repository on the guest's loopback; client trusts its root")
        gr = GuestRepo(g, shared)
        try:
            print(f"  udriver-repo serve listening on {gr.url} (inside the guest)")
            root_json = shared / "public/keys/root.json"
            guest(g, f"udriver repo add main {gr.url} --root {root_json} --auto-install")
            guest(g, "udriver autobind --update-rules && udevadm control --reload")
            guest(g, "udriver repo list")

            step(5, "Hot-plugging an edu device (QMP device_add)")
            t1 = time.monotonic()
            bdf = hotplug(g, "edu1", "rp1", timeout=120)
            unit = f"udriver@{bdf}.service"
            print(f"  the guest sees {bdf}; udev starts udriver-autobind@{bdf}.service",
                  flush=True)

            def finished() -> list[dict[str, object]] | None:
                st = status(g, bdf)
                if st.get("state") == "failed":
                    log = g.run(f"cat /run/udriver/log/{bdf}.log", timeout=60).stdout
                    raise SystemExit(f"demo: the driver failed: {st}\n{log}")
                evs = events(journal(g, unit))
                return evs if any(e.get("event") == "done" for e in evs) else None

            evs = wait_for(finished, 600, "the edu driver's checks", step=1.0)
            print(f"  installed, bound and running {time.monotonic() - t1:.1f} s after "
                  "device_add", flush=True)

            step(6, "The driver at work")
            guest(g, f"systemctl status --no-pager --lines=0 {unit}")
            guest(g, "udriver devices")
            guest(g, "udriver status")
            print(f"  driver output (`journalctl -u {unit}`, JSON lines from the edu driver):")
            for e in evs:
                print(f"    {e}")
            ok = [e for e in evs if e.get("event") == "done"] == [{"event": "done", "ok": True}]
            guest(g, f"systemctl stop {unit}")
            props = unit_props(g, unit, "ActiveState", "Result")
            print(f"  systemctl stop: {props['ActiveState']}, result {props['Result']}")
            ok = ok and props["Result"] == "success"
            unplug(g, "edu1", bdf)
            print("  device_del: the device is gone; its state cleaned up")
        finally:
            gr.stop()
    print("\nDemo " + ("PASSED: the hot-plugged edu device was driven by the driver from the "
                      "signed repository." if ok else "FAILED: see the driver output above."))
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kernel", default="6.1", choices=["6.1", "6.12"])
    p.add_argument("--workdir", type=Path, help="keep work files here")
    p.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    args = p.parse_args(argv)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return run(args.workdir, args.kernel)
    work = Path(tempfile.mkdtemp(prefix="udriver-demo-"))
    try:
        return run(work, args.kernel)
    finally:
        if args.keep:
            print(f"work files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
