"""`udriver_repo.server.serve` shuts down gracefully on SIGTERM and SIGINT.

The server runs in its own process, as `udriver-repo serve` runs it. An upload is in
flight (half its body sent) when the signal arrives: the listening socket closes at once,
the upload still completes with 201, and the process exits with status 0.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from test_server_helpers import copy_repo

from udriver_vm.repofactory import make_driver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def repo_copy(repo_template) -> Iterator[tuple[Path, str]]:  # type: ignore[no-untyped-def]
    base = Path(tempfile.mkdtemp(prefix="udr-sd-"))
    yield copy_repo(repo_template.path, base / "repo"), repo_template.tokens["qemu"]
    shutil.rmtree(base, ignore_errors=True)


def _start(repo: Path, via_cli: bool) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    if via_cli:  # exactly what an operator runs
        cmd = [sys.executable, "-c", "from udriver_repo.cli import run; run()",
               "serve", "--repo", str(repo), "--port", str(port)]
    else:
        cmd = [sys.executable, "-c",
               f"from udriver_repo.server import serve; serve({str(repo)!r}, port={port})"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).ok:
                return proc, port
        except requests.ConnectionError:
            time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    proc.kill()
    pytest.fail("server did not start")


@pytest.mark.parametrize("sig,via_cli", [(signal.SIGTERM, True), (signal.SIGINT, False)],
                         ids=["SIGTERM-udriver-repo-serve", "SIGINT-serve()"])
def test_signal_lets_the_in_flight_upload_finish_and_exits_0(tmp_path, repo_copy, sig, via_cli):
    repo, token = repo_copy
    proc, port = _start(repo, via_cli)
    try:
        _, (path,) = make_driver(tmp_path, "udriver-inflight", driver="inflight", deb=False)
        wheel = path.read_bytes()
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall((f"PUT /api/v1/packages/udriver_inflight-0.1.0-py3-none-any.whl HTTP/1.1\r\n"
                   f"Host: x\r\nAuthorization: Bearer {token}\r\n"
                   f"Content-Length: {len(wheel)}\r\n\r\n").encode() + wheel[:100])
        deadline = time.monotonic() + 20  # the handler makes its staging dir, then reads
        while not list((repo / "staging").glob("upload-*")):
            assert time.monotonic() < deadline, "the upload never started"
            time.sleep(0.02)
        os.kill(proc.pid, sig)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the listener goes away first
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                time.sleep(0.05)
            except OSError:
                break
        else:
            pytest.fail("the server kept accepting connections after the signal")
        assert proc.poll() is None, "the server exited before the in-flight upload finished"
        s.sendall(wheel[100:])
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            assert chunk, f"connection closed without a response: {data!r}"
            data += chunk
        s.close()
        assert data.startswith(b"HTTP/1.1 201 "), data[:300]
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None and b"Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
