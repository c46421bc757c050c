"""Issue 9, case 9 (control characters): ESC, CR, LF, other C0/C1 controls, bidi overrides
and undecodable bytes from a file name, a forwarded-for address, a vendor name or any other
field are escaped in the audit log as stored (so the documented `sqlite3` query prints
them escaped), on the way out of `AuditLog.entries()` (rows written raw by an older
version), and in the access log.
"""

from __future__ import annotations

import sqlite3
import subprocess
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from _hardening import Srv, audit_rows, error, nothing_published, raw, running, verifies
from aiohttp.test_utils import make_mocked_request
from test_server_helpers import make_wheel
from udriver_repo._audit import AuditLog, escape_text
from udriver_repo.server import ServerConfig
from udriver_repo.server._access import log_line

# Every character a terminal or a bidi renderer acts on, and text that must stay as is.
DANGEROUS = ["\x00", "\x07", "\x08", "\t", "\n", "\r", "\x1b", "\x7f", "\x85", "\x9b",
             "\u061c", "\u200b", "\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d",
             "\u202e", "\u2028", "\u2029", "\u2066", "\u2067", "\u2068", "\u2069", "\ufeff",
             "\udcff"]


def _clean(text: str) -> bool:
    return not any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in text)


@pytest.mark.parametrize("ch", DANGEROUS, ids=[f"U+{ord(c):04X}" for c in DANGEROUS])
def test_escape_text_escapes_each_dangerous_character(ch):
    out = escape_text(f"a{ch}b")
    assert _clean(out) and out.startswith("a\\") and out.endswith("b")
    assert escape_text(out) == out  # idempotent


def test_escape_text_keeps_printable_text():
    for text in ("udriver_edu-1.0.0-py3-none-any.whl", "Grüße, 日本語, ĳ", "a\\x1b"):
        assert escape_text(text) == text
    assert escape_text("\x1b[2J\r") == "\\x1b[2J\\x0d"
    assert escape_text("\u202egnp.exe") == "\\u202egnp.exe"


def test_audit_log_stores_every_field_escaped(tmp_path):
    log = AuditLog(tmp_path / "state.db")
    evil = "x\x1b[31m\r\n\u202e\x9b\udcfey"
    log.record(action=f"up{evil}", status=400, result=f"r{evil}", vendor=f"v{evil}",
               client=f"c{evil}", filename=f"f{evil}", sha256=f"s{evil}", message=f"m{evil}")
    with sqlite3.connect(tmp_path / "state.db") as c:
        row = c.execute("SELECT * FROM server_audit").fetchone()
    text = [v for v in row if isinstance(v, str)]
    assert len(text) == 8 and all(_clean(v) for v in text), row
    assert row[2] == "vx\\x1b[31m\\x0d\\x0a\\u202e\\x9b\\udcfey"


def test_entries_escape_rows_written_raw_by_an_older_version(tmp_path):
    log = AuditLog(tmp_path / "state.db")
    with sqlite3.connect(tmp_path / "state.db") as c:
        c.execute("INSERT INTO server_audit (time, vendor, client, action, filename, status,"
                  " result, message) VALUES ('t', 'v\x1b', 'c\r', 'upload', 'f\u202e.whl',"
                  " 400, 'bad', 'm\n')")
    (e,) = log.entries()
    assert (e.vendor, e.client, e.filename, e.message) == (
        "v\\x1b", "c\\x0d", "f\\u202e.whl", "m\\x0a")


# ------------------------------------------------------------------ over HTTP


@pytest.fixture(scope="module")
def srv(repo_template) -> Iterator[Srv]:  # type: ignore[no-untyped-def]
    with running(repo_template, ServerConfig(max_upload_bytes=4 << 20), "udr-esc-") as s:
        yield s


@pytest.fixture
def guard(srv: Srv) -> Iterator[None]:
    with nothing_published(srv):
        yield


def test_control_characters_in_file_name_are_stored_escaped(srv, guard, tmp_path):
    w = make_wheel(tmp_path, "esc")
    n = len(audit_rows(srv.path))
    # %1b[2J clears a terminal, %0d returns the cursor, %e2%80%ae is U+202E (RTL override)
    r = requests.put(f"{srv.url}/api/v1/packages/udriver_esc%1b%5b2J%0d%e2%80%ae"
                     "-0.1.0-py3-none-any.whl", data=w.read_bytes(),
                     headers={"Authorization": f"Bearer {srv.tokens['qemu']}"}, timeout=30)
    error(r, 400, "bad-filename")
    (row,) = audit_rows(srv.path)[n:]
    assert row["filename"] == "udriver_esc\\x1b[2J\\x0d\\u202e-0.1.0-py3-none-any.whl"
    assert all(_clean(v) for v in row.values() if isinstance(v, str)), row


def test_forwarded_for_with_controls_is_stored_escaped(srv, guard):
    # Bytes `requests` would send, but over a raw socket to be sure nothing is rewritten:
    # C1 CSI (U+009B) and RLO (U+202E) as UTF-8, which aiohttp's parser lets through.
    n = len(audit_rows(srv.path))
    resp = raw(srv.port, b"PUT /api/v1/packages/udriver_x-0.1.0-py3-none-any.whl HTTP/1.1\r\n"
               b"Host: x\r\nContent-Length: 0\r\nConnection: close\r\n"
               b"X-Forwarded-For: 10.0.0.1\xc2\x9b2J\xe2\x80\xae\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 401")
    (row,) = audit_rows(srv.path)[n:]
    assert row["client"].endswith("(X-Forwarded-For: 10.0.0.1\\x9b2J\\u202e)")


def test_documented_sqlite3_query_prints_no_raw_control_bytes(srv, guard, tmp_path):
    """The query of docs/serving.md, run with the sqlite3 CLI an operator would use."""
    requests.put(f"{srv.url}/api/v1/packages/a%1b%5d0%3bowned%07%0db.whl", data=b"x",
                 timeout=30)
    out = subprocess.run(["sqlite3", str(srv.path / "state.db"),
                          ("SELECT time, actor, vendor, client, filename, status, result "
                           "FROM server_audit")], capture_output=True, check=True).stdout
    assert b"a\\x1b]0;owned\\x07\\x0db.whl" in out
    body = out.replace(b"\n", b"")  # the CLI's own row separator
    assert not any(b < 0x20 or b == 0x7F for b in body), body[-300:]


def test_access_log_line_is_escaped_and_has_no_query():
    req = make_mocked_request(
        "GET", "/metadata/1.root.json?access_token=udr_abc_secret",
        headers={"User-Agent": "curl\x1b[2J\r\u202e"})
    line = log_line(req, 200, 123, 0.5)
    assert "secret" not in line and "access_token" not in line
    assert "/metadata/1.root.json?<query omitted>" in line
    assert "curl\\x1b[2J\\x0d\\u202e" in line and _clean(line)


def test_repository_still_verifies(srv):
    verifies(srv.path)




def test_web_page_shows_control_and_bidi_characters_escaped():
    from udriver_repo.server._catalog import CatalogView
    from udriver_repo.server._gateway import VendorView
    from udriver_repo.server._pciids import PciNames
    from udriver_repo.server._web import render_page

    from udriver.repoformat import IndexEntry
    evil = IndexEntry("udriver-\u202eexe.evil", "edu\x1b[8m", "1.0\u2066", (1, 0),
                      ("pci:v00001234d00000001sv*sd*bc*sc*i*",), {"wheel": "drivers/1234/x"},
                      "1234")
    page = render_page([VendorView("v\u200fx", (0x1234,), False, False)],
                       CatalogView(7, {"1234": [evil]}), PciNames(Path("/nonexistent")))
    assert _clean(page.replace("\n", ""))
    assert "udriver-\\u202eexe.evil" in page and "edu\\x1b[8m" in page
    assert "v\\u200fx" in page
