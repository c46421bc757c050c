#!/usr/bin/env python3
"""Requests per second for TUF metadata GETs: repo-server next to nginx, same tree, same run.

Issue 4, acceptance 10 (third bullet). What it does:

1. builds a repository with the real core (`Repository.init`, three vendors, a handful of
   drivers published through `Repository.publish`);
2. starts repo-server (`udriver_repo.server.serve`, one process) and nginx (Debian's
   `nginx-light`, `worker_processes 1` so both use one core) with the `server` block of
   docs/serving.md, both on 127.0.0.1;
3. runs `wrk` against each in turn, alternating, `--runs` times: GETs cycling over the
   metadata a client refreshes (timestamp, snapshot, targets, a bin, a vendor role, an
   index target), keep-alive connections, no conditional requests;
4. prints a table of medians (req/s, p50/p99 latency) and the nginx/repo-server ratio.

Any non-2xx response fails the benchmark (a fast 404 would be a meaningless number).

    python3 bench/repo_http.py [--runs 3] [--duration 5] [--connections 32] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "serving.md"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with status {proc.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{what} did not answer {url} within 30 s")


def build_repo(base: Path, drivers: int) -> tuple[Path, list[str]]:
    """A repository with `drivers` published drivers; returns it and the metadata paths."""
    from udriver_repo import Repository

    from udriver_vm.repofactory import make_driver  # test factory: minimal valid wheels/debs

    repo = Repository.init(base / "repo")
    owners = [("qemu", 0x1234), ("acme", 0x1AF4), ("intel", 0x8086)]
    for name, pci in owners:
        repo.add_vendor(name, [pci])
    for i in range(drivers):
        name, pci = owners[i % len(owners)]
        _, files = make_driver(base / "dist" / str(i), f"udriver-bench{i}", driver=f"bench{i}",
                               deb=False,
                               modaliases=(f"pci:v{pci:08X}d{0x1000 + i:08X}sv*sd*bc*sc*i*",))
        repo.publish(files, vendor=name)
    stop = getattr(repo, "stop_agent", None)
    if callable(stop):
        stop()
    public = base / "repo" / "public"
    meta = public / "metadata"
    ts = json.loads((meta / "timestamp.json").read_bytes())
    snap_v = ts["signed"]["meta"]["snapshot.json"]["version"]
    snap = json.loads((meta / f"{snap_v}.snapshot.json").read_bytes())["signed"]["meta"]
    paths = ["/metadata/timestamp.json", f"/metadata/{snap_v}.snapshot.json"]
    roles = sorted(snap.items(), key=lambda kv: (kv[0] != "targets.json", kv[0]))
    for role_file, info in roles[:1] + [r for r in roles if not r[0].startswith("bin")][:4] \
            + [r for r in roles if r[0].startswith("bin")][:2]:
        p = f"/metadata/{info['version']}.{role_file}"
        if p not in paths:
            paths.append(p)
    index = sorted((public / "targets" / "index").glob("*.json"))[:2]
    paths += [f"/targets/index/{p.name}" for p in index]
    for p in paths:
        assert (public / p.lstrip("/")).is_file(), p
    return base / "repo", paths


def nginx_conf(tmp: Path, public: Path, port: int, upstream: int) -> Path:
    """The `server` block of docs/serving.md inside a minimal main configuration."""
    block = re.search(r"```nginx\n(.*?)```", DOC.read_text(), re.DOTALL)
    if block is None:
        sys.exit(f"no ```nginx block in {DOC}")
    server = (block.group(1).replace("/srv/udriver/repo/public", str(public))
              .replace("127.0.0.1:8081", f"127.0.0.1:{port}")
              .replace("127.0.0.1:8080", f"127.0.0.1:{upstream}"))
    temp = "\n".join(f"    {d}_temp_path {tmp}/{d};" for d in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = tmp / "nginx.conf"
    conf.write_text(f"""daemon off;
worker_processes 1;
{"user root;" if os.geteuid() == 0 else ""}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
{temp}
{server}
}}
""")
    return conf


def wrk(url: str, paths: list[str], tmp: Path, args: argparse.Namespace) -> dict[str, float]:
    script = tmp / "paths.lua"
    script.write_text("local paths = {" + ", ".join(json.dumps(p) for p in paths) + "}\n"
                      "local i = 0\nrequest = function()\n  i = i % #paths + 1\n"
                      "  return wrk.format(\"GET\", paths[i])\nend\n")
    out = subprocess.run(["wrk", f"-t{args.threads}", f"-c{args.connections}",
                          f"-d{args.duration}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        sys.exit(f"non-2xx responses from {url}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def lat(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        assert m, out
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    return {"rps": rps, "p50": lat("50"), "p99": lat("99")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per server (median reported)")
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=32, help="wrk connections")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--drivers", type=int, default=12, help="drivers in the repository")
    args = ap.parse_args()
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"{tool} is not installed (apt packages nginx-light, wrk; see .ci/setup)")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"

    with tempfile.TemporaryDirectory(prefix="udr-bench-") as t:
        tmp = Path(t)
        repo, paths = build_repo(tmp, args.drivers)
        srv_port, ngx_port = _free_port(), _free_port()
        server = subprocess.Popen(
            [sys.executable, "-c", ("from udriver_repo.server import serve; "
                                    f"serve({str(repo)!r}, port={srv_port})")],
            stderr=subprocess.DEVNULL)
        conf = nginx_conf(tmp, (repo / "public").resolve(), ngx_port, srv_port)
        ngx = subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp), "-e",
                                str(tmp / "error.log")], stderr=subprocess.DEVNULL)
        results: dict[str, list[dict[str, float]]] = {"repo-server": [], "nginx": []}
        try:
            _wait_http(f"http://127.0.0.1:{srv_port}/api/v1/health", server, "repo-server")
            _wait_http(f"http://127.0.0.1:{ngx_port}/metadata/timestamp.json", ngx, "nginx")
            urls = {"repo-server": f"http://127.0.0.1:{srv_port}",
                    "nginx": f"http://127.0.0.1:{ngx_port}"}
            for name, url in urls.items():  # warm-up, and the same bytes from both
                a = urllib.request.urlopen(url + paths[1]).read()
                assert a == (repo / "public" / paths[1].lstrip("/")).read_bytes(), name
            for _ in range(args.runs):
                for name, url in urls.items():
                    results[name].append(wrk(url, paths, tmp, args))
        finally:
            for proc in (server, ngx):
                proc.send_signal(signal.SIGTERM)
            for proc in (server, ngx):
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()

    print(f"metadata GETs over {len(paths)} paths, wrk -t{args.threads} -c{args.connections} "
          f"-d{args.duration}s, median of {args.runs} runs, {os.cpu_count()} CPUs")
    print(f"{'server':<12} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8}   runs (req/s)")
    med = {}
    for name, runs in results.items():
        med[name] = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99")}
        each = ", ".join(f"{r['rps']:.0f}" for r in runs)
        print(f"{name:<12} {med[name]['rps']:>10.0f} {med[name]['p50']:>8.2f} "
              f"{med[name]['p99']:>8.2f}   {each}")
    print(f"ratio nginx / repo-server: {med['nginx']['rps'] / med['repo-server']['rps']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
