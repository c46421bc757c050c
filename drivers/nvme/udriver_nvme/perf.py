"""`python -m udriver_nvme.perf`: an I/O workload straight on the NVMe queues (direct path).

    python -m udriver_nvme.perf --device 0000:00:04.0 --rw randread --bs 4096 --qd 32 --seconds 5
    python -m udriver_nvme.perf --device 0000:00:04.0 --verify --region-mb 16

The device must be bound to vfio-pci. The controller is brought up, the job runs, and the
controller is shut down (CC.SHN) again. Results go to stdout (a table, or one JSON object
with --json); errors as one `error: ...` line on stderr, exit 1. `--verify` writes the
region sequentially with a CRC32C/LBA tag per block, overwrites random blocks, reads all
back and counts blocks whose tag does not match (exit 1 if any).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from udriver.errors import UdriverError
from udriver.runtime import Device

from ._controller import Controller
from ._job import RW_MODES, JobSpec

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m udriver_nvme.perf", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    env = os.environ.get
    p.add_argument("--device", default=env("UDRIVER_NVME_DEVICE"), required=not env(
        "UDRIVER_NVME_DEVICE"), help="PCI address (env UDRIVER_NVME_DEVICE)")
    p.add_argument("--rw", choices=sorted(RW_MODES), default="randread")
    p.add_argument("--bs", type=int, default=4096, help="bytes per command")
    p.add_argument("--qd", type=int, default=32, help="commands in flight")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--ios", type=int, default=0, help="stop after this many commands")
    p.add_argument("--irq", choices=("msix", "poll"), default="msix")
    p.add_argument("--nsid", type=int, default=None)
    p.add_argument("--region-mb", type=float, default=0, help="limit LBAs to the first N MiB")
    p.add_argument("--verify", action="store_true", help="write, overwrite, read back, check")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    return p


def _verify(ctrl: Controller, args: argparse.Namespace, count: int) -> dict[str, Any]:
    base = {"bs": args.bs, "qd": args.qd, "lba_count": count, "nsid": args.nsid, "verify": True}
    units = count * ctrl.namespace(args.nsid).lba_bytes // args.bs
    fill = ctrl.run(JobSpec(rw="write", ios=units, **base))
    over = ctrl.run(JobSpec(rw="randwrite", ios=max(1, units // 2), seed=7, **base))
    check = ctrl.run(JobSpec(rw="read", ios=units, **base))
    return {"fill": fill.summary(), "overwrite": over.summary(), "check": check.summary(),
            "verify_errors": check.verify_errors,
            "failed": fill.failed + over.failed + check.failed}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with Device(args.device) as dev:
            ctrl = Controller(dev, irq=args.irq, io_depth=max(64, args.qd + 1),
                              slots=args.qd, slot_bytes=max(4096, -(-args.bs // 4096) * 4096))
            ctrl.start()
            try:
                ns = ctrl.namespace(args.nsid)
                count = ns.nsze
                if args.region_mb:
                    count = min(count, int(args.region_mb * 2**20) // ns.lba_bytes)
                if args.verify:
                    out = _verify(ctrl, args, count)
                    bad = out["verify_errors"] or out["failed"]
                else:
                    res = ctrl.run(JobSpec(rw=args.rw, bs=args.bs, qd=args.qd,
                                           seconds=args.seconds, ios=args.ios,
                                           lba_count=count, nsid=args.nsid))
                    out = {"rw": args.rw, "bs": args.bs, "qd": args.qd, "irq": args.irq,
                           **res.summary()}
                    bad = res.failed
            finally:
                out_shutdown = ctrl.shutdown()
        out["shutdown"] = out_shutdown
        out["stats"] = ctrl.stats()
    except UdriverError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(out, sort_keys=True))
    else:
        for key, value in out.items():
            print(f"{key:>22}: {value}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
