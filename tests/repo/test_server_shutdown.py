"""`udriver_repo.server.serve` shuts down gracefully on SIGTERM and SIGINT.

The server runs in its own process, as `udriver-repo serve` runs it. An upload is in
flight (half its body sent) when the signal arrives: the listening socket closes at once,
the upload still completes with 201, and the process exits with status 0.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests

from test_server_helpers import core_works, make_wheel

TOKEN = "shutdown-test-token-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int, str]:
    port = _free_port()
    repo = tmp_path / "repo"
    if core_works(tmp_path):
        from udriver_repo import Repository
        token = Repository.init(repo).add_vendor("acme", [0x1234])
        script = f"from udriver_repo.server import serve; serve({str(repo)!r}, port={port})"
    else:  # the core is not on main yet: the same serve() over the test fake
        token = TOKEN
        script = textwrap.dedent(f"""
            import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})
            from pathlib import Path
            from test_server_helpers import FakeRepository
            from udriver_repo.server import _app
            fake = FakeRepository.create(Path({str(repo)!r}))
            fake.add_vendor("acme", [0x1234], token={TOKEN!r})
            _app._default_factory = fake.factory
            import udriver_repo.server._gateway as g; g._default_factory = fake.factory
            _app.serve({str(repo)!r}, port={port})
        """)
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).ok:
                return proc, port, token
        except requests.ConnectionError:
            time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    proc.kill()
    pytest.fail("server did not start")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_lets_the_in_flight_upload_finish_and_exits_0(tmp_path, sig):
    proc, port, token = _start(tmp_path)
    try:
        wheel = make_wheel(tmp_path, "inflight").read_bytes()
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall((f"PUT /api/v1/packages/udriver_inflight-0.1.0-py3-none-any.whl HTTP/1.1\r\n"
                   f"Host: x\r\nAuthorization: Bearer {token}\r\n"
                   f"Content-Length: {len(wheel)}\r\n\r\n").encode() + wheel[:100])
        time.sleep(0.3)  # the handler is now reading the body
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
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
