"""Issue 9, acceptance 5: `udriver-repo publish` and the HTTP upload give the same verdict.

One parametrised test over a corpus of bad files (each one thing a hostile vendor could
try). For each: the real `udriver-repo publish` command (a child process) and the real
server on 127.0.0.1 (PUT /api/v1/packages/<name>) refuse it with the same problem list
(the CLI's `error: <message>` is the HTTP body's message), the HTTP answer is a 400, an
audit row records it, nothing is published (the public tree is byte-for-byte unchanged),
and `udriver-repo verify` and a plain python-tuf client still pass afterwards.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from test_server_helpers import ServerThread
from udriver_repo.server import ServerConfig, create_app

from _gatefactory import (
    Member,
    manifest,
    valid_control,
    valid_deb_members,
    valid_wheel_members,
    wheel_name,
    with_parents,
    write_deb,
    write_wheel,
)
from udriver._debpolicy import udev_rules_text

M = manifest("edu", "0.2.0")
DRV = "usr/lib/udriver/drivers/edu"
MIB = 1024 * 1024


def _deb_plus(*extra: Member, **kw: object) -> Callable[[Path], Path]:
    return lambda d: write_deb(d, M, with_parents([*valid_deb_members(M)[1:], *extra]), **kw)  # type: ignore[arg-type]


def _deb_control(**fields: str) -> Callable[[Path], Path]:
    return lambda d: write_deb(d, M, control={**valid_control(M), **fields})


def _wheel(edit: Callable[[dict[str, bytes]], None], m=M, name: str | None = None,  # type: ignore[no-untyped-def]
           modes: dict[str, int] | None = None) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        mem = valid_wheel_members(m)
        edit(mem)
        return write_wheel(d / (name or wheel_name(m)), mem, record_for=m, modes=modes, level=9)
    return make


def _bomb(mem: dict[str, bytes]) -> None:  # issue 9 case 6
    mem.update({f"udriver_edu/blob{i}.bin": bytes(32 * MIB) for i in range(31)})


def _udev_run(d: Path) -> Path:
    rule = udev_rules_text(M) + b'ACTION=="add", RUN+="/bin/sh -c \'id > /root/x\'"\n'
    data = [x if not x.name.endswith(".rules") else Member(x.name, rule)
            for x in valid_deb_members(M)]
    return write_deb(d, M, data)


def _multipart(d: Path) -> Path:  # issue 9 case 8: an HTML/multipart prefix around a wheel
    w = _wheel(lambda mem: None)(d)
    w.write_bytes(b"--b\r\nContent-Type: text/html\r\n\r\n<html></html>" + w.read_bytes())
    return w


CORPUS: dict[str, Callable[[Path], Path]] = {
    "multipart-prefix": _multipart,
    "setuid-file": _deb_plus(Member(f"{DRV}/udriver_edu/sh", b"\x7fELF", mode=0o4755)),
    "world-writable": _deb_plus(Member(f"{DRV}/udriver_edu/x.py", b"x = 1\n", mode=0o666)),
    "symlink": _deb_plus(Member(f"{DRV}/udriver_edu/l", kind="symlink", linkname="/etc/shadow")),
    "device": _deb_plus(Member(f"{DRV}/udriver_edu/mem", kind="chr")),
    "owner-not-root": _deb_plus(Member(f"{DRV}/udriver_edu/x.py", b"x\n", uid=1000,
                                       uname="vendor")),
    "etc-file": _deb_plus(Member("etc/cron.d/udriver", b"* * * * * root id\n")),
    "maintainer-script": lambda d: write_deb(d, M, control_extra=[
        Member("./postinst", b"#!/bin/sh\nid > /root/pwned\n", mode=0o755)]),
    "essential": _deb_control(Essential="yes"),
    "pre-depends": _deb_control(**{"Pre-Depends": "openssh-server"}),
    "replaces": _deb_control(Replaces="udriver"),
    "provides": _deb_control(Provides="udriver-driver-nvme"),
    "conflicts": _deb_control(Conflicts="udriver-driver-acme"),
    "extra-sha256": _deb_control(SHA256="0" * 64, Size="1"),
    "udev-rule-run": _udev_run,
    "deb-bomb": _deb_plus(Member(f"{DRV}/udriver_edu/z.bin", bytes(64 * MIB))),
    "wheel-bomb": _wheel(_bomb),
    "equal-normalised-version": _wheel(lambda mem: None, m=manifest("edu", "0.1.0"),
                                       name="udriver_edu-0.1.0.0-py3-none-any.whl"),
    "requires-dist": _wheel(lambda mem: mem.update({
        "udriver_edu-0.2.0.dist-info/METADATA":
            mem["udriver_edu-0.2.0.dist-info/METADATA"] + b"Requires-Dist: requests==9.9\n"})),
    "foreign-entry-point": _wheel(lambda mem: mem.update({
        "udriver_aaa-0.2.0.dist-info/entry_points.txt":
            b"[udriver.drivers]\naaa = udriver_aaa:Driver\nedu = beta_mod:Evil\n"}),
        m=manifest("aaa", "0.2.0", ("pci:v00001234d00000AAAsv*sd*bc*sc*i*",))),
    "console-script": _wheel(lambda mem: mem.update({
        "udriver_edu-0.2.0.dist-info/entry_points.txt":
            mem["udriver_edu-0.2.0.dist-info/entry_points.txt"] + b"[console_scripts]\nls = x:y\n"})),
    "wheel-symlink": _wheel(lambda mem: mem.update({"udriver_edu/l": b"/etc/shadow"}),
                            modes={"udriver_edu/l": 0o120777}),
}


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _repo_files(repo: Path) -> dict[str, str]:
    """Every file of the repository but the audit database, staging/ (checked empty) and
    the GnuPG home (agent sockets): a refusal may add an audit row, nothing else."""
    out = {}
    for p in sorted(repo.rglob("*")):
        rel = p.relative_to(repo)
        if rel.parts[0] in ("staging", "gnupg") or rel.name.startswith("state.db"):
            continue
        if p.is_file():
            out[str(rel)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("udriver-repo")
    return subprocess.run([str(exe), *argv], capture_output=True, text=True, timeout=300,
                          check=False)


@pytest.fixture
def server(published_repo, repo_tokens):  # type: ignore[no-untyped-def]
    srv = ServerThread(create_app(published_repo.path, ServerConfig())).start()
    yield srv
    srv.stop()


# Cases whose bytes do not start with the archive's own signature.
_PREFIXED = {"multipart-prefix"}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_publish_and_upload_give_the_same_verdict(case, published_repo, repo_tokens, server,  # type: ignore[no-untyped-def]
                                                  make_client, tmp_path):
    path = CORPUS[case](tmp_path / "dist")
    repo = str(published_repo.path)
    before = _tree(published_repo.public)
    everything = _repo_files(published_repo.path)

    cli = _cli("publish", str(path), "--vendor", "qemu", "--repo", repo)
    assert cli.returncode == 1 and cli.stdout == "", cli
    assert cli.stderr.startswith(f"error: {path.name}: refused ("), cli.stderr

    r = requests.put(f"{server.url}/api/v1/packages/{path.name}", data=path.read_bytes(),
                     headers={"Authorization": f"Bearer {repo_tokens['qemu']}"}, timeout=120)
    assert r.status_code == 400, r.text
    body = r.json()
    if body["error"] == "bad-body":
        # The HTTP layer refuses bytes in front of the archive's signature before the gate
        # reads anything (the same verdict, decided one step earlier); the gate refuses
        # the same file on the CLI, as the line above shows.
        assert case in _PREFIXED, case
    else:
        assert body["error"] in ("invalid-package", "invalid-id-table")
        assert cli.stderr == f"error: {body['message']}\n", "CLI and HTTP verdicts differ"

    with sqlite3.connect(published_repo.path / "state.db") as c:
        row = c.execute("SELECT vendor, filename, status, result FROM server_audit "
                        "ORDER BY id DESC LIMIT 1").fetchone()
    assert row == ("qemu", path.name, 400, body["error"])
    assert _tree(published_repo.public) == before, "a refused artifact changed the public tree"
    assert list((published_repo.path / "staging").iterdir()) == []
    assert _repo_files(published_repo.path) == everything, "a refusal wrote outside staging"
    verify = _cli("verify", "--repo", repo)
    assert verify.returncode == 0 and verify.stdout.startswith("OK: "), verify.stdout
    updater = make_client()  # a plain python-tuf ngclient, fresh from 1.root.json
    updater.refresh()
    assert updater.get_targetinfo("index/1234/8.json") is not None
