"""The hardening also holds on Debian 12's aiohttp 3.8 (python3-aiohttp, which the
repo-server .deb depends on), whose server has no timer at all on a fresh connection.

Runs the server under the system interpreter (`/usr/bin/python3`, installed with
python3-aiohttp by .ci/setup) with the test `FakeRepository` behind it (python-tuf is not
installed there; the HTTP layer is what differs between aiohttp versions), and checks
the header timeout (fresh and keep-alive connections), a 429, a 408 with staging removed,
a 401 for a non-UTF-8 token and the audit rows.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"

SCRIPT = r'''
import json, pathlib, shutil, socket, sqlite3, sys, tempfile, time, types
root = pathlib.Path(sys.argv[1])
sys.path[:0] = [str(root / "toolkit"), str(root / "tests/repo")]
pkg = types.ModuleType("udriver_repo")  # the server without the core's __init__ (tuf)
pkg.__path__ = [str(root / "repo-server/udriver_repo")]
sys.modules["udriver_repo"] = pkg
sys.modules["pytest"] = types.ModuleType("pytest")
import aiohttp
from udriver_repo.server import ServerConfig, create_app
from test_server_helpers import FakeRepository, ServerThread, make_wheel
base = pathlib.Path(tempfile.mkdtemp(prefix="udr-38-"))
fake = FakeRepository.create(base / "repo")
tok = fake.add_vendor("qemu", [0x1234], token="udr_0123456789ab_secretsecretsecret")
cfg = ServerConfig(header_timeout=1, body_timeout=1, upload_timeout=3, vendor_uploads=1)
srv = ServerThread(create_app(base / "repo", cfg, repo_factory=fake.factory)).start()
out = {"aiohttp": aiohttp.__version__}
def conn(data):
    s = socket.create_connection(("127.0.0.1", srv.port)); s.sendall(data); return s
def until_closed(s, limit=30):
    t = time.monotonic(); s.settimeout(limit); data = b""
    try:
        while (c := s.recv(65536)): data += c
    except OSError: pass
    return time.monotonic() - t, data.decode("latin-1")
half = [conn(b"GET /api/v1/health HTTP/1.1\r\nHost: x") for _ in range(20)]
out["half_open"] = max(until_closed(s)[0] for s in half)
out["silent"] = until_closed(conn(b""))[0]
s = conn(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
out["first"] = s.recv(1000)[:15].decode()
s.sendall(b"GET / HTTP/1.1\r\n")
out["keepalive_partial"] = until_closed(s)[0]
w = make_wheel(base, "x")
head = (f"PUT /api/v1/packages/{w.name} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}"
        "\r\nContent-Length: 100000\r\n\r\n").encode()
up = conn(head + b"PK\x03\x04" + bytes(100))
time.sleep(0.3)
out["staged"] = len(list((base / "repo/staging").iterdir()))
out["second"] = until_closed(conn(head))[1][:12]
t, answer = until_closed(up)
out["stalled"] = answer[:12]
out["staging_after"] = len(list((base / "repo/staging").iterdir()))
bad = conn(b"PUT /api/v1/packages/a.whl HTTP/1.1\r\nHost: x\r\n"
           b"Authorization: Bearer udr_01_\xff\xfe\r\nContent-Length: 0\r\n\r\n")
out["bad_token"] = until_closed(bad, 5)[1][:12]
time.sleep(0.5)
out["audit"] = [list(r) for r in sqlite3.connect(base / "repo/state.db").execute(
    "SELECT action, status, result FROM server_audit WHERE actor IS NULL ORDER BY id")]
srv.stop()
shutil.rmtree(base, ignore_errors=True)
print(json.dumps(out))
'''


def test_hardening_on_debian_aiohttp_38(tmp_path):
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import aiohttp; print(aiohttp.__version__)"],
                           capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SYSTEM_PYTHON} has no aiohttp: .ci/setup installs python3-aiohttp")
        pytest.skip(f"{SYSTEM_PYTHON} has no aiohttp (python3-aiohttp not installed)")
    script = tmp_path / "run38.py"
    script.write_text(SCRIPT)
    r = subprocess.run([SYSTEM_PYTHON, str(script), str(ROOT)], capture_output=True, text=True,
                       timeout=180, check=False, env={**os.environ, "PYTHONPATH": ""})
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"\naiohttp {out['aiohttp']}: half-open closed after {out['half_open']:.2f} s, "
          f"silent {out['silent']:.2f} s, keep-alive partial {out['keepalive_partial']:.2f} s")
    assert out["half_open"] <= 2.5 and out["silent"] <= 2.5
    assert out["first"].startswith("HTTP/1.1 200") and out["keepalive_partial"] <= 2.5
    assert out["staged"] == 1 and out["staging_after"] == 0
    assert out["second"].startswith("HTTP/1.1 429")
    assert out["stalled"].startswith("HTTP/1.1 408")
    assert out["bad_token"].startswith("HTTP/1.1 401")
    results = [tuple(a) for a in out["audit"]]
    assert results.count(("connect", 408, "header-timeout")) == 21
    assert ("upload", 429, "too-many-uploads") in results
    assert ("upload", 408, "timeout") in results
    assert ("upload", 401, "unauthorized") in results
