"""`udriver upload`: a vendor publishes through the real server on 127.0.0.1 (issue 13).

The token comes from the environment or a 0600 file, never from the command line, and
never appears in any output; each rejection is one `error:` line naming the file.
"""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_server_helpers import ServerThread, copy_repo
from udriver_repo.server import ServerConfig, create_app

from udriver.cli import main


@pytest.fixture
def server(repo_template) -> Iterator[dict[str, object]]:  # type: ignore[no-untyped-def]
    base = Path(tempfile.mkdtemp(prefix="udr-up-"))  # short: GnuPG socket path limit
    path = copy_repo(repo_template.path, base / "repo")
    srv = ServerThread(create_app(path, ServerConfig())).start()
    yield {"url": srv.url, "path": path, **repo_template.tokens}
    srv.stop()
    shutil.rmtree(base, ignore_errors=True)


def _audit_rows(path: object) -> int:
    assert isinstance(path, Path)
    with sqlite3.connect(path / "state.db") as c:
        return int(c.execute("SELECT count(*) FROM server_audit").fetchone()[0])


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_upload_publishes_then_reports_unchanged(server: dict[str, object], edu_files: list[Path],
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    token = str(server["qemu"])
    monkeypatch.setenv("UDRIVER_UPLOAD_TOKEN", token)
    files = [str(f) for f in edu_files]
    code, out, err = _run(capsys, "upload", "--url", str(server["url"]), *files)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert [ln.split(" (")[0] for ln in lines] == [f"published {f.name}" for f in edu_files]
    code, out, _ = _run(capsys, "upload", "--url", str(server["url"]), "--json", *files)
    assert code == 0
    assert [r["result"] for r in json.loads(out)] == ["unchanged", "unchanged"]
    assert token not in out


def test_token_file_must_be_private(server: dict[str, object], edu_files: list[Path],
                                    tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UDRIVER_UPLOAD_TOKEN", raising=False)
    tf = tmp_path / "token"
    tf.write_text(str(server["qemu"]) + "\n")
    tf.chmod(0o644)
    before = _audit_rows(server["path"])
    code, out, err = _run(capsys, "upload", "--url", str(server["url"]), "--token-file", str(tf),
                          str(edu_files[0]))
    assert (code, out) == (1, "")
    assert err == (f"error: The token file is readable by other users (mode 0644): '{tf}'\n"
                   f"hint: chmod 600 {tf}\n")
    assert _audit_rows(server["path"]) == before  # nothing was sent
    tf.chmod(0o600)
    code, out, err = _run(capsys, "upload", "--url", str(server["url"]), "--token-file", str(tf),
                          str(edu_files[0]))
    assert code == 0 and out.startswith(f"published {edu_files[0].name} (sha256 "), err


def test_a_refused_upload_is_one_error_line_without_the_token(
        server: dict[str, object], edu_files: list[Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UDRIVER_UPLOAD_TOKEN", "udr_nosuch_0123456789abcdef")
    code, out, err = _run(capsys, "upload", "--url", str(server["url"]), str(edu_files[0]))
    assert (code, out) == (1, "")
    assert err.startswith(f"error: {edu_files[0].name}: HTTP 401 unauthorized: ")
    assert err.count("\n") == 1 and "udr_nosuch" not in err
    # another vendor's token: the IDs are not its own
    monkeypatch.setenv("UDRIVER_UPLOAD_TOKEN", str(server["acme"]))
    code, out, err = _run(capsys, "upload", "--url", str(server["url"]), str(edu_files[0]))
    assert code == 1 and f"error: {edu_files[0].name}: HTTP 403 out-of-scope: " in err


def test_mistakes_before_anything_is_sent(server: dict[str, object], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UDRIVER_UPLOAD_TOKEN", raising=False)
    monkeypatch.delenv("UDRIVER_UPLOAD_URL", raising=False)
    before = _audit_rows(server["path"])
    missing = tmp_path / "udriver_x-1.0-py3-none-any.whl"
    assert _run(capsys, "upload", str(missing)) == (
        1, "", ("error: `--url URL` is required: the repository server to upload to\n"
               "hint: or set UDRIVER_UPLOAD_URL\n"))
    code, _, err = _run(capsys, "upload", "--url", str(server["url"]), str(missing))
    assert code == 1 and err.startswith("error: No upload token\nhint: set UDRIVER_UPLOAD_TOKEN")
    monkeypatch.setenv("UDRIVER_UPLOAD_TOKEN", str(server["qemu"]))
    assert _run(capsys, "upload", "--url", str(server["url"]), str(missing), "notes.txt") == (
        1, "", (f"error: Nothing uploaded: {str(missing)!r} does not exist; "
               "'notes.txt' is not a .whl or .deb file\n"))
    assert _audit_rows(server["path"]) == before
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tf = tmp_path / "udriver_y-1.0-py3-none-any.whl"
    tf.write_bytes(b"not a wheel")
    code, out, err = _run(capsys, "upload", "--url", f"http://u:pw@127.0.0.1:{port}", str(tf))
    assert (code, out) == (1, "")
    assert err == (f"error: cannot reach http://u:********@127.0.0.1:{port}: "
                   "connection refused (errno 111)\n")
