"""Issue 9, case 9 (tokens): a malformed, foreign or revoked token is a 401 with an audit
row, never a 500; a token is never written to the audit log, the server log or the access
log, and a token in the URL is refused with 400.

Against the real server on 127.0.0.1 and the real repository core. Requests with bytes
that `requests` will not send (non-UTF-8 header values) go over a raw socket. Each
rejection also checks that nothing was published or written outside staging; the last
test runs `Repository.verify` (what `udriver-repo verify` runs) on the tree.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from _hardening import (
    Srv,
    audit_rows,
    error,
    nothing_published,
    raw,
    running,
    verifies,
    wait_for,
)
from test_server_helpers import copy_repo, make_wheel
from udriver_repo.server import ServerConfig

WHEEL = "udriver_tok-0.1.0-py3-none-any.whl"
SECRET = "S3cr3tTokenValueThatMustNeverBeLogged0123456"


@pytest.fixture(scope="module")
def srv(repo_template) -> Iterator[Srv]:  # type: ignore[no-untyped-def]
    with running(repo_template, ServerConfig(max_upload_bytes=4 << 20), "udr-tok-") as s:
        yield s


@pytest.fixture
def guard(srv: Srv) -> Iterator[None]:
    with nothing_published(srv):
        yield


def _raw_put(srv: Srv, authorization: bytes | None, body: bytes = b"PK\x03\x04x") -> bytes:
    head = (f"PUT /api/v1/packages/{WHEEL} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n").encode()
    if authorization is not None:
        head += b"Authorization: " + authorization + b"\r\n"
    return raw(srv.port, head + b"\r\n" + body)


def _status(response: bytes) -> int:
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", response)
    assert m, response[:200]
    return int(m.group(1))


_MALFORMED = {
    "non-utf8": b"Bearer udr_0123456789ab_\xff\xfe\xfd\xfc",
    "non-ascii-utf8": "Bearer udr_0123456789ab_sécret€".encode(),
    "c1-control-utf8": "Bearer udr_0123456789ab_a\u009bb".encode(),
    "wrong-shape": b"Bearer udr_0123456789ab",
    "not-udr": b"Bearer ghp_0123456789abcdef0123456789abcdef",
    "b64-padding-junk": b"Bearer udr_0123456789ab_abc==def",
    "bearer-missing": b"udr_0123456789ab_" + SECRET.encode(),
    "bearer-empty": b"Bearer",
    "basic": b"Basic YWNtZTpwdw==",
    "huge-within-parser-limit": b"Bearer udr_0123456789ab_" + b"A" * 6000,
}


@pytest.mark.parametrize("value", list(_MALFORMED.values()), ids=list(_MALFORMED))
def test_malformed_authorization_is_401_with_audit_row(srv, guard, value):
    n = len(audit_rows(srv.path))
    resp = _raw_put(srv, value)
    assert _status(resp) == 401, resp[:400]
    assert b"WWW-Authenticate: Bearer" in resp
    assert b'"error": "unauthorized"' in resp
    rows = audit_rows(srv.path)[n:]
    assert [(r["status"], r["result"], r["vendor"], r["filename"]) for r in rows] == [
        (401, "unauthorized", None, WHEEL)]
    # Neither the answer nor the audit row quotes the token.
    token_part = value.split(b" ", 1)[-1][12:40]
    if len(token_part) >= 8:
        assert token_part not in resp
        assert token_part.decode("utf-8", "replace") not in str(rows)


def test_missing_authorization_is_401_with_audit_row(srv, guard):
    n = len(audit_rows(srv.path))
    resp = _raw_put(srv, None)
    assert _status(resp) == 401 and b"missing" in resp
    assert [r["result"] for r in audit_rows(srv.path)[n:]] == ["unauthorized"]


def test_header_over_the_parser_limit_is_400_audited_and_not_logged(srv, guard, caplog):
    # aiohttp's parser refuses a header line over 8190 bytes before the application runs;
    # its error message quotes the line. The audit row comes from the access logger and
    # the aiohttp.server record is rewritten without the bytes.
    caplog.set_level(logging.DEBUG)
    n = len(audit_rows(srv.path))
    resp = _raw_put(srv, f"Bearer udr_0123456789ab_{SECRET}".encode() + b"B" * 20000)
    assert _status(resp) == 400
    assert wait_for(lambda: len(audit_rows(srv.path)) > n, 5)
    row = audit_rows(srv.path)[n]
    assert (row["action"], row["status"], row["result"]) == ("http", 400, "malformed-request")
    assert SECRET not in caplog.text
    assert "LineTooLong" in caplog.text or "the offending bytes are not logged" in caplog.text


@pytest.fixture
def revoked_token(srv: Srv) -> str:
    """A vendor added and revoked before the test's `guard` snapshot is taken."""
    from udriver_repo import Repository
    repo = Repository.open(srv.path)
    token = repo.add_vendor("gone", [0x1D0F], False)
    repo.revoke_vendor("gone")
    return token


def test_revoked_vendors_token_is_401_with_audit_row(srv, revoked_token, guard, tmp_path):
    token = revoked_token
    n = len(audit_rows(srv.path))
    w = make_wheel(tmp_path, "tok")
    r = requests.put(f"{srv.url}/api/v1/packages/{w.name}", data=w.read_bytes(),
                     headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert "revoked" in error(r, 401, "unauthorized")
    assert [(x["status"], x["result"]) for x in audit_rows(srv.path)[n:]] == [
        (401, "unauthorized")]


def test_token_in_query_is_400_on_upload(srv, guard, tmp_path):
    w = make_wheel(tmp_path, "tok")
    n = len(audit_rows(srv.path))
    r = requests.put(f"{srv.url}/api/v1/packages/{w.name}?access_token={srv.tokens['qemu']}",
                     data=w.read_bytes(), timeout=30)
    assert "Authorization: Bearer" in error(r, 400, "token-in-query")
    rows = audit_rows(srv.path)[n:]
    assert [(x["status"], x["result"]) for x in rows] == [(400, "token-in-query")]
    assert srv.tokens["qemu"] not in str(rows)


def test_token_in_query_is_400_even_with_a_valid_header(srv, guard, tmp_path):
    w = make_wheel(tmp_path, "tok")
    r = requests.put(f"{srv.url}/api/v1/packages/{w.name}?token=x", data=w.read_bytes(),
                     headers={"Authorization": f"Bearer {srv.tokens['qemu']}"}, timeout=30)
    error(r, 400, "token-in-query")


def test_other_query_on_upload_is_400(srv, guard, tmp_path):
    w = make_wheel(tmp_path, "tok")
    r = requests.put(f"{srv.url}/api/v1/packages/{w.name}?force=1", data=w.read_bytes(),
                     headers={"Authorization": f"Bearer {srv.tokens['qemu']}"}, timeout=30)
    error(r, 400, "bad-query")


def test_token_in_query_is_400_on_other_paths(srv, guard):
    n = len(audit_rows(srv.path))
    r = requests.get(f"{srv.url}/ui/?access_token=abc", timeout=30)
    error(r, 400, "token-in-query")
    assert [(x["action"], x["result"]) for x in audit_rows(srv.path)[n:]] == [
        ("request", "token-in-query")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_access_log_under_v_has_no_query_token_and_no_raw_controls(repo_template, tmp_path):
    """`udriver-repo -v serve`, as an operator runs it: the access log (stderr) gets no
    query string, no token and no raw control or bidi character."""
    base = Path(tempfile.mkdtemp(prefix="udr-v-"))
    repo = copy_repo(repo_template.path, base / "repo")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", "from udriver_repo.cli import run; run()",
                             "-v", "serve", "--repo", str(repo), "--port", str(port)],
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        token = repo_template.tokens["qemu"]
        ua = "evil\u202eRTL\u009b31m\u2028end".encode()
        for path in (f"/ui/?access_token={token}", f"/metadata/x.json?access_token={token}",
                     f"/api/v1/packages/{WHEEL}?access_token={token}"):
            raw(port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode()
                + b"User-Agent: " + ua + b"\r\n\r\n")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    shutil.rmtree(base, ignore_errors=True)
    text = err.decode("utf-8", "surrogateescape")
    assert "udriver_repo.server.access" in text or '"GET /ui/' in text, text[-2000:]
    assert token not in text and token.split("_")[-1] not in text
    assert "?<query omitted>" in text
    assert "\u202e" not in text and "\u009b" not in text and "\u2028" not in text
    assert "\\u202e" in text and "\\x9b" in text


def test_repository_still_verifies(srv):
    verifies(srv.path)


def test_a_bug_behind_the_token_check_is_a_500_with_an_audit_row(tmp_path):
    """What the non-UTF-8 token used to hit (an exception the handler did not expect, a
    500 without an audit row): any bug is now still one audit row and a JSON 500, with and
    without `Expect: 100-continue`."""
    from test_server_helpers import FakeRepository, ServerThread
    from udriver_repo.server import create_app

    class Broken(FakeRepository):
        def authenticate(self, token: str):  # type: ignore[no-untyped-def]
            raise UnicodeEncodeError("utf-8", token, 0, 1, "surrogates not allowed")

    base = Path(tempfile.mkdtemp(prefix="udr-bug-"))
    fake = Broken.create(base / "repo")
    srv = ServerThread(create_app(base / "repo", repo_factory=fake.factory)).start()
    try:
        w = make_wheel(tmp_path, "tok")
        headers = {"Authorization": "Bearer udr_0123456789ab_secretsecret"}
        r = requests.put(f"{srv.url}/api/v1/packages/{w.name}", data=w.read_bytes(),
                         headers=headers, timeout=30)
        assert "server log" in error(r, 500, "internal-error")
        resp = raw(srv.port, (f"PUT /api/v1/packages/{w.name} HTTP/1.1\r\nHost: x\r\n"
                              f"Authorization: {headers['Authorization']}\r\n"
                              "Expect: 100-continue\r\nContent-Length: 10\r\n\r\n").encode())
        assert _status(resp) == 500 and b"internal-error" in resp
        rows = audit_rows(base / "repo")
        assert [(x["status"], x["result"]) for x in rows] == [(500, "internal-error")] * 2
        assert list((base / "repo" / "staging").iterdir()) == []
    finally:
        srv.stop()
        shutil.rmtree(base, ignore_errors=True)
