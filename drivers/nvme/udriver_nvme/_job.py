"""Workloads run straight on an I/O queue pair: the direct path (the SPDK model).

The loop itself is C (`nvme_job_run`, native/nvme_io.c): it keeps `qd` commands in flight,
rings one doorbell per batch, reaps completions by Phase Tag and, in verify mode, stamps
or checks a CRC32C tag in every logical block (native/nvme_tag.c). This module checks the
spec against the queues and the namespace and turns the C result into a `JobResult`.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass, field
from typing import Any

from udriver.errors import ConfigError

from ._c import IoBuffers, QueuePair, check, ffi, lib
from ._identify import NamespaceId
from ._status import NvmeStatus, decode_status

__all__ = ["RW_MODES", "JobResult", "JobSpec", "percentile", "run_job"]

RW_MODES = {"read": 0, "randread": 1, "write": 2, "randwrite": 3}
"""fio's names for the access patterns (sequential read, random read, ...)."""


@dataclass(frozen=True)
class JobSpec:
    """What to run."""

    rw: str = "randread"
    """One of RW_MODES."""
    bs: int = 4096
    """Bytes per command (whole logical blocks)."""
    qd: int = 32
    """Commands in flight."""
    seconds: float = 0.0
    """Stop issuing after this long (0: only `ios` limits)."""
    ios: int = 0
    """Stop after this many commands (0: only `seconds` limits)."""
    lba_start: int = 0
    lba_count: int | None = None
    """The region, in logical blocks (default: from lba_start to the end)."""
    verify: bool = False
    """Writes stamp a CRC32C/LBA tag per block; reads check it."""
    seed: int = 1
    nsid: int | None = None
    latencies: int = 1 << 20
    """Keep at most this many latency samples."""


@dataclass
class JobResult:
    """What a job did."""

    ios: int
    bytes: int
    seconds: float
    cpu_seconds: float
    """User + system CPU time of this process during the job."""
    verify_errors: int
    first_verify_lba: int | None
    failed: int
    first_failed_status: NvmeStatus | None
    first_failed_lba: int | None
    latencies_ns: list[int] = field(repr=False, default_factory=list)

    @property
    def iops(self) -> float:
        return self.ios / self.seconds if self.seconds else 0.0

    @property
    def mbps(self) -> float:
        """MB/s (10^6 bytes)."""
        return self.bytes / self.seconds / 1e6 if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ns)
        return {
            "ios": self.ios, "bytes": self.bytes, "seconds": round(self.seconds, 3),
            "iops": round(self.iops, 1), "mbps": round(self.mbps, 2),
            "lat_p50_us": round(percentile(lat, 50) / 1e3, 1),
            "lat_p99_us": round(percentile(lat, 99) / 1e3, 1),
            "cpu_us_per_io": round(self.cpu_seconds / self.ios * 1e6, 1) if self.ios else 0.0,
            "verify_errors": self.verify_errors, "first_verify_lba": self.first_verify_lba,
            "failed": self.failed,
            "first_failed_status": str(self.first_failed_status)
            if self.first_failed_status else None,
            "first_failed_lba": self.first_failed_lba,
        }


def percentile(sorted_values: list[int], pct: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return float(sorted_values[int(rank) - 1])


def _validate(spec: JobSpec, ns: NamespaceId, io: QueuePair, bufs: IoBuffers) -> int:
    problems = []
    if spec.rw not in RW_MODES:
        problems.append(f"`rw` must be one of {', '.join(RW_MODES)}, got {spec.rw!r}")
    if spec.bs <= 0 or spec.bs % ns.lba_bytes or spec.bs > bufs.slot_bytes:
        problems.append(f"`bs` must be a multiple of {ns.lba_bytes} up to {bufs.slot_bytes}, "
                        f"got {spec.bs}")
    if not 1 <= spec.qd <= min(bufs.slots, io.depth - 1):
        problems.append(f"`qd` must be 1..{min(bufs.slots, io.depth - 1)}, got {spec.qd}")
    if spec.seconds <= 0 and spec.ios <= 0:
        problems.append("give `seconds` or `ios` (or both) > 0")
    count = ns.nsze - spec.lba_start if spec.lba_count is None else spec.lba_count
    if spec.lba_start < 0 or count < max(1, spec.bs // ns.lba_bytes) or \
            spec.lba_start + count > ns.nsze:
        problems.append(f"region {spec.lba_start}+{count} blocks does not fit namespace "
                        f"{ns.nsid} ({ns.nsze} blocks) or holds less than one `bs`")
    if problems:
        raise ConfigError("nvme job: " + "; ".join(problems))
    return count


def run_job(api: int, dev: int, io: QueuePair, bufs: IoBuffers, ns: NamespaceId,
            spec: JobSpec, timeout_ms: int) -> JobResult:
    """Run `spec` on `io` and return what happened.

    Raises:
        ConfigError: the spec does not fit (every problem listed).
        NvmeTimeoutError: no completion for `timeout_ms` (or CSTS.CFS, or device gone).
        NativeError: a doorbell write or an eventfd wait failed.
    """
    count = _validate(spec, ns, io, bufs)
    job, res = ffi.new("struct nvme_job *"), ffi.new("struct nvme_job_result *")
    lat = ffi.new("uint64_t[]", max(1, spec.latencies))
    job.lba_start, job.lba_count = spec.lba_start, count
    job.max_ios, job.duration_ns = spec.ios, int(spec.seconds * 1e9)
    job.seed, job.lat_ns, job.lat_cap = spec.seed, lat, spec.latencies
    job.nsid, job.lba_bytes, job.rw = ns.nsid, ns.lba_bytes, RW_MODES[spec.rw]
    job.bs, job.qd, job.verify, job.timeout_ms = spec.bs, spec.qd, int(spec.verify), timeout_ms
    before = resource.getrusage(resource.RUSAGE_SELF)
    rc = lib.nvme_job_run(api, dev, io.c, bufs.c, job, res)
    after = resource.getrusage(resource.RUSAGE_SELF)
    check(rc, f"NVMe {spec.rw} job (bs {spec.bs}, qd {spec.qd}) on namespace {ns.nsid}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return JobResult(
        ios=int(res.ios), bytes=int(res.bytes), seconds=res.elapsed_ns / 1e9, cpu_seconds=cpu,
        verify_errors=int(res.verify_errors),
        first_verify_lba=int(res.first_verify_lba) if res.verify_errors else None,
        failed=int(res.failed),
        first_failed_status=decode_status(res.first_failed_status) if res.failed else None,
        first_failed_lba=int(res.first_failed_lba) if res.failed else None,
        latencies_ns=list(ffi.unpack(lat, int(res.lat_count))),
    )
