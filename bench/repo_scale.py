#!/usr/bin/env python3
"""Repository scale: publish latency and client metadata bytes at N = 1k / 10k / 100k drivers.

Issue 4, acceptance 10 (first two bullets). For each N, a synthetic repository of N
drivers over 2,000 vendors is generated (bench/repo_synthetic.py), then:

1. **Publish latency.** `Repository.publish` of one more real driver (a factory wheel,
   and separately a wheel + deb, which also regenerates and re-signs the apt view) to a
   different vendor each run, with fsync on, the repository lock, validation, signing
   of the vendor role, index, snapshot and timestamp. Median of `--runs` runs.
2. **Client bytes.** A fresh python-tuf `ngclient.Updater` (empty cache, bootstrap root)
   refreshes and downloads the index targets of 5 vendors, i.e. everything a machine
   with devices from 5 vendors needs in order to know its candidate drivers. Every byte
   it fetches is counted (TUF metadata and index targets separately) and compared with a
   single flat, signed `targets.json` listing every target of the same repository.

Goals (DESIGN.md "Scale"): latency flat in N and < 0.5 s at 100k; client bytes
independent of N and < 1% of the flat file at 100k.

    python3 bench/repo_scale.py [--sizes 1000,10000,100000] [--runs 5] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tuf.ngclient import Updater

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests" / "repo")]

from _factory import make_driver
from repo_synthetic import flat_targets_size, generate, vendor_id
from udriver_repo._verify import FileFetcher

CLIENT_VENDORS = [0, 199, 398, 597, 796]  # each has drivers at every N >= 1000


class _CountingFetcher(FileFetcher):
    def __init__(self) -> None:
        self.metadata = 0
        self.index = 0

    def _fetch(self, url: str) -> Iterator[bytes]:
        chunks = list(super()._fetch(url))
        n = sum(len(c) for c in chunks)
        if "/metadata/" in url:
            self.metadata += n
        else:
            self.index += n
        return iter(chunks)


def client_bytes(public: Path, vendors: list[int]) -> tuple[int, int]:
    """(TUF metadata bytes, index bytes) a fresh client fetches for `vendors`."""
    root = (public / "metadata" / "1.root.json").read_bytes()
    fetcher = _CountingFetcher()
    with tempfile.TemporaryDirectory(prefix="udr-client-") as d:
        up = Updater(d, public.as_uri() + "/metadata/", d, public.as_uri() + "/targets/",
                     fetcher=fetcher, bootstrap=root)
        up.refresh()
        for i in vendors:
            info = up.get_targetinfo(f"index/{vendor_id(i):04x}.json")
            assert info is not None
            up.download_target(info, f"{d}/index-{i}")
    return fetcher.metadata, fetcher.index


def publish_latency(repo, work: Path, runs: int, deb: bool) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for r in range(runs):
        i = (r * 397 + (1000 if deb else 0)) % 2000
        vid = vendor_id(i)
        _, files = make_driver(work / f"p{r}{deb}", f"udriver-bench{r}{'d' if deb else ''}",
                               "1.0.0", f"bench{r}{'d' if deb else ''}",
                               (f"pci:v0000{vid:04X}d0000{0xF000 + r + (100 if deb else 0):04X}sv*sd*bc*sc*i*",), deb=deb)
        t = time.perf_counter()
        res = repo.publish(files, vendor=f"v{i:04d}")
        out.append(time.perf_counter() - t)
        assert not res.unchanged
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description="repository scale benchmark")
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--vendors", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the generated repositories")
    ap.add_argument("--debs", action="store_true",
                    help="synthetic drivers have a wheel and a deb target (default: wheel only)")
    a = ap.parse_args()
    rows = []
    for n in [int(x) for x in a.sizes.split(",")]:
        base = Path(tempfile.mkdtemp(prefix=f"udr-scale-{n}-"))
        t = time.perf_counter()
        repo, targets = generate(base / "repo", n, a.vendors, a.debs)
        gen = time.perf_counter() - t
        flat = flat_targets_size(targets)
        meta, index = client_bytes(repo.public, CLIENT_VENDORS)
        whl = publish_latency(repo, base / "dist", a.runs, deb=False)
        both = publish_latency(repo, base / "dist", max(3, a.runs // 2), deb=True)
        meta2, index2 = client_bytes(repo.public, CLIENT_VENDORS)  # after the publishes
        rows.append((n, gen, statistics.median(whl), max(whl), statistics.median(both),
                     meta, index, flat))
        print(f"N={n}: generated in {gen:.1f} s; publish wheel {statistics.median(whl):.3f} s, "
              f"wheel+deb {statistics.median(both):.3f} s; client {meta + index} B "
              f"(after publishes {meta2 + index2} B); flat targets.json {flat} B", flush=True)
        repo.stop_agent()
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)
    print()
    print(f"Publish latency, one more driver (median of {a.runs}; wheel+deb median of "
          f"{max(3, a.runs // 2)}), {a.vendors} vendors, fsync on")
    print(f"{'N':>8} | {'wheel (s)':>9} | {'wheel max':>9} | {'wheel+deb (s)':>13} | gen (s)")
    for n, gen, med, mx, both, *_ in rows:
        print(f"{n:>8} | {med:>9.3f} | {mx:>9.3f} | {both:>13.3f} | {gen:7.1f}")
    print()
    print("Bytes a fresh client downloads for devices from 5 vendors vs one flat targets.json"
          f" (synthetic drivers: {'wheel + deb' if a.debs else 'wheel only'})")
    print(f"{'N':>8} | {'TUF meta':>9} | {'indexes':>8} | {'total':>8} | {'flat':>11} | "
          f"{'total/flat':>10}")
    for n, _, _, _, _, meta, index, flat in rows:
        print(f"{n:>8} | {meta:>9} | {index:>8} | {meta + index:>8} | {flat:>11} | "
              f"{100 * (meta + index) / flat:>9.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
