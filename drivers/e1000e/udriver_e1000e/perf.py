"""`python -m udriver_e1000e.perf`: packets per second straight on the 82574's rings.

    python -m udriver_e1000e.perf --device 0000:00:05.0 tx --dst 52:54:00:12:34:56 --size 60 --seconds 5
    python -m udriver_e1000e.perf --device 0000:00:05.0 rx --idle 2 --seconds 30

The device must be bound to vfio-pci. The NIC is reset and brought up, the generator
(`tx`) or sink (`rx`) runs in C on batches of frames, and the NIC is stopped again.
`--wait-link` seconds waits for STATUS.LU first. Results go to stdout (one line per
field, or one JSON object with --json); errors as one `error: ...` line on stderr, exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from udriver.errors import UdriverError
from udriver.runtime import Device

from ._nic import Nic
from ._perf import generate, sink

__all__ = ["main"]


def _mac(text: str) -> bytes:
    try:
        value = bytes.fromhex(text.replace(":", "").replace("-", ""))
    except ValueError:
        value = b""
    if len(value) != 6:
        raise argparse.ArgumentTypeError(f"not an Ethernet address: {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m udriver_e1000e.perf", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    env = os.environ.get
    p.add_argument("--device", default=env("UDRIVER_E1000E_DEVICE"),
                   required=not env("UDRIVER_E1000E_DEVICE"),
                   help="PCI address (env UDRIVER_E1000E_DEVICE)")
    p.add_argument("--irq", choices=("msix", "poll"), default="poll")
    p.add_argument("--itr", type=int, default=8000, help="interrupts/s per vector (msix)")
    p.add_argument("--batch", type=int, default=32, help="frames per burst (1..64)")
    p.add_argument("--seconds", type=float, default=0.0)
    p.add_argument("--count", type=int, default=0, help="stop after this many frames")
    p.add_argument("--wait-link", type=float, default=5.0, help="seconds to wait for link")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    sub = p.add_subparsers(dest="mode", required=True)
    tx = sub.add_parser("tx", help="send generator frames")
    tx.add_argument("--dst", type=_mac, default=b"\xff" * 6, help="destination MAC")
    tx.add_argument("--size", type=int, default=60, help="frame bytes without FCS")
    tx.add_argument("--rate", type=float, default=0.0, help="frames/s (0: unlimited)")
    rx = sub.add_parser("rx", help="count generator frames")
    rx.add_argument("--idle", type=float, default=0.0,
                    help="stop this long after the last frame")
    rx.add_argument("--promisc", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out: dict[str, Any] = {"mode": args.mode, "irq": args.irq, "batch": args.batch}
    try:
        with Device(args.device) as dev:
            nic = Nic(dev, irq=args.irq, itr=args.itr,
                      promisc=getattr(args, "promisc", False))
            nic.start()
            try:
                deadline = time.monotonic() + args.wait_link
                while not nic.link_up and time.monotonic() < deadline:
                    time.sleep(0.01)
                out.update(mac=nic.mac_str, link=nic.link_up)
                if args.mode == "tx":
                    res = generate(nic, args.dst, size=args.size, batch=args.batch,
                                   count=args.count, seconds=args.seconds, rate=args.rate)
                else:
                    print(json.dumps({"event": "ready", "mac": nic.mac_str}), file=sys.stderr,
                          flush=True)
                    res = sink(nic, batch=args.batch, count=args.count, seconds=args.seconds,
                               idle=args.idle)
                out.update(res.summary())
                out["stats"] = nic.read_stats()
                out["rings"] = nic.counters()
            finally:
                nic.stop()
    except UdriverError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(out, sort_keys=True))
    else:
        for key, value in out.items():
            print(f"{key:>12}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
