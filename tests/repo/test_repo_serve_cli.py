"""`udriver-repo serve` as an operator runs it: it says where it listens, and a busy port
is one error line with a hint, not a traceback (issue 13)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import requests

SERVE = [sys.executable, "-c", "from udriver_repo.cli import run; run()", "serve"]


def test_port_0_prints_the_url_and_serves(repo_env) -> None:  # type: ignore[no-untyped-def]
    p = subprocess.Popen([*SERVE, "--repo", str(repo_env.path), "--port", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line.startswith(f"serving {repo_env.path} at http://127.0.0.1:"), line
        url = line.split(" at ")[1].split()[0]
        assert requests.get(f"{url}api/v1/health", timeout=10).json() == {"status": "ok"}
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "Traceback" not in err


def test_a_busy_port_is_one_error_line(repo_env) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        t0 = time.monotonic()
        r = subprocess.run([*SERVE, "--repo", str(repo_env.path), "--port", str(port)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert time.monotonic() - t0 < 30
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (f"error: cannot listen on 127.0.0.1:{port}: address already in use\n"
                        "hint: another program uses that port: choose another with --port "
                        "(--port 0 takes a free one and prints it)\n")
