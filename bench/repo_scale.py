#!/usr/bin/env python3
"""Repository scale: publish latency and client metadata bytes at N = 1k / 10k / 100k drivers.

Issue 4, acceptance 10 (first two bullets). For each N, a synthetic repository of N
drivers over 2,000 vendors is generated (bench/repo_synthetic.py), then:

1. **Publish latency.** `Repository.publish` of one more real driver (a factory wheel,
   and separately a wheel + deb, which also regenerates and re-signs the apt view) to a
   different vendor each run, with fsync on, the repository lock, validation, signing
   of the vendor role, index, snapshot and timestamp. Median of `--runs` runs.
2. **Client bytes.** A fresh python-tuf `ngclient.Updater` (empty cache, bootstrap root)
   refreshes and looks up what `udriver` looks up for one device of each of 5 vendors
   (the device's index shard, the vendor's `any` shard, a format-1 per-vendor index,
   and the class index) and downloads those that exist, i.e. everything a machine with
   devices from 5 vendors needs in order to know its candidate drivers. Every byte
   it fetches is counted per file (timestamp, snapshot, targets, bins, vendor roles,
   index targets) and compared with a single flat, signed `targets.json` listing every
   target of the same repository, and with one listing only the driver files. The `gzip` column is what the same files weigh with
   `Content-Encoding: gzip` (computed, level 6), next to the flat file's gzip size.

With `--debs` the synthetic repository's apt view lists every synthetic deb, so the
measured wheel+deb publishes update an apt view of N packages.

Goals (DESIGN.md "Scale"): latency flat in N and < 0.5 s at 100k; client bytes
independent of N and < 1% of the flat file at 100k.

    python3 bench/repo_scale.py [--sizes 1000,10000,100000] [--runs 5] [--keep] [--debs]
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from repo_synthetic import flat_targets_size, generate, vendor_id
from tuf.ngclient import Updater
from udriver_repo._verify import FileFetcher

from udriver_vm.repofactory import make_driver

CLIENT_VENDORS = [0, 199, 398, 597, 796]  # each has drivers at every N >= 1000


CATEGORIES = ("timestamp", "snapshot", "targets", "bins", "vendor roles", "indexes")


def category(url: str) -> str:
    name = url.rsplit("/", 1)[1]
    if "/metadata/" not in url:
        return "indexes"
    role = name.split(".")[-2] if name != "timestamp.json" else "timestamp"
    if role.startswith("bin-"):
        return "bins"
    if role.startswith("vendor-"):
        return "vendor roles"
    return role


class _CountingFetcher(FileFetcher):
    def __init__(self) -> None:
        self.raw: Counter[str] = Counter()
        self.gz: Counter[str] = Counter()
        self.files: Counter[str] = Counter()

    def _fetch(self, url: str) -> Iterator[bytes]:
        chunks = list(super()._fetch(url))
        data = b"".join(chunks)
        c = category(url)
        self.raw[c] += len(data)
        self.gz[c] += len(gzip.compress(data, 6))
        self.files[c] += 1
        return iter(chunks)


def client_bytes(public: Path, vendors: list[int]) -> _CountingFetcher:
    """Per-category bytes a fresh client fetches to learn the drivers of `vendors`."""
    root = (public / "metadata" / "1.root.json").read_bytes()
    fetcher = _CountingFetcher()
    with tempfile.TemporaryDirectory(prefix="udr-client-") as d:
        up = Updater(d, public.as_uri() + "/metadata/", d, public.as_uri() + "/targets/",
                     fetcher=fetcher, bootstrap=root)
        up.refresh()
        for i in vendors:
            # The client has device 0001 of each vendor (driver i matches it at every N).
            vid = vendor_id(i)
            for name in (f"{vid:04x}/1", f"{vid:04x}/any", f"{vid:04x}", "class"):
                info = up.get_targetinfo(f"index/{name}.json")
                if name == f"{vid:04x}/1":
                    assert info is not None
                if info is not None:
                    up.download_target(info, f"{d}/index-{name.replace('/', '-')}")
    return fetcher


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
        flat, flat_gz = flat_targets_size(targets)
        files_only, _ = flat_targets_size([t for t in targets if t.path.startswith("drivers/")])
        before = client_bytes(repo.public, CLIENT_VENDORS)
        whl = publish_latency(repo, base / "dist", a.runs, deb=False)
        both = publish_latency(repo, base / "dist", max(3, a.runs // 2), deb=True)
        after = client_bytes(repo.public, CLIENT_VENDORS)  # after the publishes
        apt = {p.name: p.stat().st_size
               for p in (repo.public / "dists/stable/main/binary-amd64").glob("Packages*")}
        rows.append((n, gen, whl, both, before, flat, flat_gz, apt, files_only))
        tot = sum(before.raw.values())
        print(f"N={n}: generated in {gen:.1f} s; publish wheel {statistics.median(whl):.3f} s, "
              f"wheel+deb {statistics.median(both):.3f} s; client {tot} B "
              f"(after publishes {sum(after.raw.values())} B); flat targets.json {flat} B; "
              f"apt {apt}", flush=True)
        repo.stop_agent()
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)
    mode = "wheel + deb" if a.debs else "wheel only"
    print()
    print(f"Publish latency, one more driver (median of {a.runs}; wheel+deb median of "
          f"{max(3, a.runs // 2)}), {a.vendors} vendors, fsync on, synthetic drivers: {mode}"
          + (", apt view of N debs" if a.debs else ""))
    print(f"{'N':>8} | {'wheel (s)':>9} | {'wheel max':>9} | {'wheel+deb (s)':>13} | "
          f"{'w+d max':>7} | {'Packages.gz':>11} | {'Packages.xz':>11} | gen (s)")
    for n, gen, whl, both, _, _, _, apt, _ in rows:
        print(f"{n:>8} | {statistics.median(whl):>9.3f} | {max(whl):>9.3f} | "
              f"{statistics.median(both):>13.3f} | {max(both):>7.3f} | "
              f"{apt.get('Packages.gz', 0):>11} | {apt.get('Packages.xz', 0):>11} | {gen:7.1f}")
    print()
    print(f"Bytes a fresh client downloads for devices from {len(CLIENT_VENDORS)} vendors vs one "
          f"flat targets.json (synthetic drivers: {mode})")
    print(f"{'N':>8} | " + " | ".join(f"{c:>12}" for c in CATEGORIES)
          + f" | {'total':>8} | {'flat':>10} | {'total/flat':>10} | {'flat files':>10} | "
          f"{'/files':>7} | {'gzip':>7} | {'flat gzip':>10} | {'gzip/flat gzip':>14}")
    for n, _, _, _, b, flat, flat_gz, _, files_only in rows:
        tot, tgz = sum(b.raw.values()), sum(b.gz.values())
        print(f"{n:>8} | " + " | ".join(f"{b.raw[c]:>12}" for c in CATEGORIES)
              + f" | {tot:>8} | {flat:>10} | {100 * tot / flat:>9.2f}% | {files_only:>10} | "
              f"{100 * tot / files_only:>6.2f}% | {tgz:>7} | {flat_gz:>10} | "
              f"{100 * tgz / flat_gz:>13.2f}%")
    print("(flat: every target of the repository, index shards included; flat files: the "
          "driver files only, i.e. the smallest flat targets.json that could serve them)")
    print("(files fetched: " + ", ".join(f"{c} {rows[0][4].files[c]}" for c in CATEGORIES)
          + "; root comes from the bootstrap)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
