"""python -m udriver.client.conformance: the TUF conformance client-under-test CLI,
run as a subprocess against the project's own repository on loopback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import Published


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "udriver.client.conformance", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_init_refresh_download(published: Published, tmp_path: Path) -> None:
    md, td = tmp_path / "md", tmp_path / "targets"
    url = published.server.url
    r = cli("--metadata-dir", str(md), "init", str(published.repo.path / "root.json"))
    assert r.returncode == 0, r.stderr
    assert (md / "root.json").read_bytes() == (published.repo.path / "root.json").read_bytes()
    r = cli("--metadata-dir", str(md), "--metadata-url", f"{url}/metadata", "refresh")
    assert r.returncode == 0, r.stderr
    for role in ("root", "timestamp", "snapshot", "targets"):
        assert (md / f"{role}.json").exists()  # non-versioned names, as the protocol asks
    name = "drivers/1234/udriver_edu-0.1.0-py3-none-any.whl"
    args = ("--metadata-dir", str(md), "--metadata-url", f"{url}/metadata", "--target-name", name,
            "--target-base-url", f"{url}/targets", "--target-dir", str(td), "download")
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    got = list(td.rglob("*.whl"))
    assert [p.read_bytes() for p in got] == [(published.wheels / "0.1.0" / got[0].name).read_bytes()]
    # cached: a second download succeeds even when the served copy is gone
    published.repo.target_file(name).unlink()
    assert cli(*args).returncode == 0


def test_failures_exit_1(published: Published, tmp_path: Path) -> None:
    md = tmp_path / "md"
    url = published.server.url
    assert cli("--metadata-dir", str(md), "init", str(published.repo.path / "root.json")).returncode == 0
    published.repo.write_timestamp(-1)
    r = cli("--metadata-dir", str(md), "--metadata-url", f"{url}/metadata", "refresh")
    assert r.returncode == 1 and "expired timestamp metadata" in r.stderr
    r = cli("--metadata-dir", str(md), "--metadata-url", f"{url}/metadata", "--target-name", "nope",
            "--target-base-url", f"{url}/targets", "--target-dir", str(tmp_path / "t"), "download")
    assert r.returncode == 1
    from udriver.client.conformance import main
    assert main(["--bogus"]) == 1
    assert main(["--metadata-dir", str(md), "refresh"]) == 1  # no --metadata-url
