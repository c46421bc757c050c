"""The client's CLI commands: exact stdout/stderr and exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import BDF, Published
from udriver.cli import main
from udriver.client import record_status

# The project carries its sysfs snapshots in tests/fixtures/ (copied from shared/fixtures).
FIXTURES = Path(os.environ.get("UDRIVER_FIXTURES")
                or Path(__file__).resolve().parents[1] / "fixtures") / "sysfs"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def sysfs(env: Path) -> Path:
    """A fake machine with one edu device at 0000:00:04.0 (plus nothing else)."""
    d = env / "sysroot" / "sys" / "bus" / "pci" / "devices" / BDF
    d.mkdir(parents=True)
    attrs = {"vendor": "0x1234", "device": "0x11e8", "subsystem_vendor": "0x1af4",
             "subsystem_device": "0x1100", "class": "0x00ff00", "revision": "0x10",
             "modalias": "pci:v00001234d000011E8sv00001AF4sd00001100bc00scFFi00",
             "driver_override": "(null)"}
    for k, v in attrs.items():
        (d / k).write_text(v + "\n")
    return env / "sysroot"


def test_repo_add_list_remove(capsys: pytest.CaptureFixture[str], published: Published) -> None:
    url = published.server.url
    root = str(published.repo.path / "root.json")
    assert run(capsys, "repo", "add", "main", url, "--root", root, "--auto-install") == (
        0, f"added repository main at {url} (auto-install)\n", "")
    assert run(capsys, "repo", "list") == (0, f"main  {url}  auto-install\n", "")
    code, out, _ = run(capsys, "repo", "list", "--json")
    assert code == 0
    assert json.loads(out) == [{"name": "main", "url": url, "auto_install": True, "ca_bundle": None}]
    assert run(capsys, "repo", "add", "main", url, "--root", root) == (
        1, "", ("error: A repository named 'main' is already configured\n"
                "hint: remove it first with `udriver repo remove main`\n"))
    assert run(capsys, "repo", "remove", "main", "--json") == (0, '{\n  "removed": "main"\n}\n', "")
    assert run(capsys, "repo", "list") == (0, "no repositories configured\n", "")


def test_repo_add_errors(capsys: pytest.CaptureFixture[str], env: Path) -> None:
    assert run(capsys, "repo", "add", "main", "ftp://x/", "--root", "r.json") == (
        1, "", "error: Invalid repository URL (scheme must be http or https): 'ftp://x/'\n")
    assert run(capsys, "repo", "add", "main", "http://x/", "--root", str(env / "r.json")) == (
        1, "", f"error: Cannot read root metadata (No such file or directory): '{env}/r.json'\n")
    assert run(capsys, "repo", "add", "main", "http://x/") == (
        1, "", "error: `--root ROOT.json` is required: the repository's trusted root\n")
    assert run(capsys, "repo", "remove", "nope") == (
        1, "", "error: No repository named 'nope' is configured\n")


def test_repo_list_masks_credentials(capsys: pytest.CaptureFixture[str], published: Published) -> None:
    url = published.server.url.replace("http://", "http://user:secret@")
    assert run(capsys, "repo", "add", "main", url, "--root", str(published.repo.path / "root.json"))[0] == 0
    _, out, _ = run(capsys, "repo", "list")
    # The credentials are stored apart (auth.d, 0600), so the URL is shown without them.
    assert "secret" not in out and out == f"main  {published.server.url}\n"


def test_install_status_rollback_remove(capsys: pytest.CaptureFixture[str],
                                        configured: Published, sysfs: Path) -> None:
    s = ["--sysfs-root", str(sysfs)]
    assert run(capsys, "install", "--auto", *s) == (
        0, f"installed edu 0.1.0 from main for {BDF}\n", "")
    assert run(capsys, "install", "--auto", *s) == (0, "nothing to install\n", "")
    configured.publish_edu("0.2.0")
    assert run(capsys, "install", "--device", BDF, *s) == (
        0, f"installed edu 0.2.0 (was 0.1.0) from main for {BDF}\n", "")
    assert run(capsys, "install", "edu", *s) == (0, "edu 0.2.0 is already installed\n", "")
    assert run(capsys, "status") == (0, "edu 0.2.0 (previous 0.1.0)\n", "")
    record_status(BDF, driver="edu", version="0.2.0", state="failed",
                  reason="crashed 5 times in 60 s; device unbound")
    assert run(capsys, "status") == (
        0, ("edu 0.2.0 (previous 0.1.0)\n"
            f"{BDF}  edu 0.2.0  failed: crashed 5 times in 60 s; device unbound\n"), "")
    _, out, _ = run(capsys, "status", "--json")
    obj = json.loads(out)
    assert obj["drivers"] == [{"driver": "edu", "current": "0.2.0", "previous": "0.1.0",
                               "versions": ["0.1.0", "0.2.0"], "held": False}]
    assert obj["devices"][BDF]["state"] == "failed"
    assert run(capsys, "rollback", "edu") == (
        0, ("rolled back edu from 0.2.0 to 0.1.0 (held: `udriver unhold edu` lets update "
           "upgrade it again)\n"), "")
    # A rollback holds: update does not upgrade straight back (issue 13).
    assert run(capsys, "status") == (
        0, ("edu 0.1.0 (previous 0.2.0)  held\n"
            f"{BDF}  edu 0.2.0  failed: crashed 5 times in 60 s; device unbound\n"), "")
    assert run(capsys, "update", "--dry-run") == (
        0, "edu 0.1.0 -> 0.2.0 from main  (held: `udriver unhold` to allow)\n", "")
    assert run(capsys, "update") == (0, "kept edu 0.1.0 (held; 0.2.0 is available)\n", "")
    assert run(capsys, "unhold", "edu") == (0, "edu is now not held\n", "")
    assert run(capsys, "update", "--dry-run") == (0, "edu 0.1.0 -> 0.2.0 from main\n", "")
    assert run(capsys, "update") == (0, "updated edu 0.1.0 -> 0.2.0 from main\n", "")
    assert run(capsys, "update") == (0, "all drivers are up to date\n", "")
    assert run(capsys, "update", "--dry-run") == (0, "all drivers are up to date\n", "")
    assert run(capsys, "hold", "edu", "nope") == (1, "", "error: driver 'nope' is not installed\n")
    assert run(capsys, "hold", "edu") == (0, "edu is now held\n", "")
    assert run(capsys, "hold", "edu") == (0, "edu was already held\n", "")
    _, out, _ = run(capsys, "history", "edu", "--json")
    assert [(h["action"], h["from"], h["to"], h["reason"]) for h in json.loads(out)] == [
        ("install", None, "0.1.0", "udriver install"),
        ("upgrade", "0.1.0", "0.2.0", "udriver install"),
        ("rollback", "0.2.0", "0.1.0", "udriver rollback"),
        ("hold", None, None, "udriver rollback"),
        ("unhold", None, None, "udriver unhold"),
        ("upgrade", "0.1.0", "0.2.0", "udriver update"),
        ("hold", None, None, "udriver hold")]
    _, out, _ = run(capsys, "history")
    assert out.splitlines()[1].endswith("upgrade   edu 0.1.0 -> 0.2.0 from main  (udriver install)")
    assert run(capsys, "remove", "edu") == (0, "removed edu (0.1.0, 0.2.0)\n", "")
    _, out, _ = run(capsys, "history", "edu")
    assert out.splitlines()[-1].endswith("remove    edu 0.2.0  (udriver remove)")
    assert run(capsys, "remove", "edu") == (1, "", "error: driver 'edu' is not installed\n")
    assert run(capsys, "rollback", "edu") == (1, "", "error: driver 'edu' is not installed\n")


def test_install_errors(capsys: pytest.CaptureFixture[str], configured: Published,
                        sysfs: Path) -> None:
    s = ["--sysfs-root", str(sysfs)]
    assert run(capsys, "install", *s) == (
        1, "", "error: nothing to install: name drivers, or use --auto, --device or --wheel\n")
    assert run(capsys, "install", "--device", "0000:00:09.0", *s) == (
        1, "", f"error: no such PCI device: 0000:00:09.0 (present: {BDF})\n")
    configured.repo.write_timestamp(-1)
    code, out, err = run(capsys, "install", "--auto", *s)
    assert (code, out) == (1, "")
    assert err.startswith("error: repository 'main', refreshing metadata: expired timestamp "
                          "metadata (expired 20")
    assert err.endswith("\nhint: the repository must re-sign its metadata; if this persists, "
                        "ask its operator\n")


def test_install_json(capsys: pytest.CaptureFixture[str], configured: Published, sysfs: Path) -> None:
    code, out, err = run(capsys, "install", "--auto", "--json", "--sysfs-root", str(sysfs))
    assert (code, err) == (0, "")
    assert json.loads(out) == [{"driver": "edu", "version": "0.1.0", "previous": None,
                                "repo": "main", "devices": [BDF], "changed": True}]


def test_search_show(capsys: pytest.CaptureFixture[str], configured: Published, sysfs: Path) -> None:
    s = ["--sysfs-root", str(sysfs)]
    assert run(capsys, "search", "1234:11e8", *s) == (
        0, "edu 0.1.0  udriver-edu  [main]  pci:v00001234d000011E8sv*sd*bc*sc*i*\n", "")
    assert run(capsys, "search", "abcd", *s) == (1, "no driver found for 'abcd'\n", "")
    code, out, _ = run(capsys, "search", "1234", "--json", *s)
    assert [e["driver"] for e in json.loads(out)] == ["edu"]
    assert run(capsys, "show", "edu", *s) == (0, (
        "driver:    edu\n"
        "package:   udriver-edu\n"
        "versions:  0.1.0 (ABI 1.0)\n"
        "devices:   pci:v00001234d000011E8sv*sd*bc*sc*i*\n"
        "files:     wheel: drivers/1234/udriver_edu-0.1.0-py3-none-any.whl\n"
        "repo:      main\n"
        "installed: no\n"), "")
    code, out, err = run(capsys, "show", "nope", *s)
    assert (code, out) == (1, "")
    assert err == ("error: cannot show 'nope': not found in the indexes of this machine's "
                   "device vendors\nhint: a driver is found by name among the drivers for this "
                   "machine's devices; for another device, look it up by its PCI ID first "
                   "(`udriver search VVVV:DDDD`), then use its name\n")


def test_offline_flag(capsys: pytest.CaptureFixture[str], configured: Published, sysfs: Path) -> None:
    s = ["--sysfs-root", str(sysfs)]
    code, _, err = run(capsys, "search", "1234", "--offline", *s)
    assert code == 1 and "offline: no cached timestamp metadata" in err
    assert run(capsys, "search", "1234", *s)[0] == 0
    configured.server.close()
    assert run(capsys, "search", "1234", "--offline", *s)[0] == 0


def test_real_snapshot_nothing_available(capsys: pytest.CaptureFixture[str],
                                         configured: Published) -> None:
    snap = FIXTURES / "small-vm"
    if not snap.is_dir():
        pytest.skip("sysfs fixtures not present")
    assert run(capsys, "install", "--auto", "--sysfs-root", str(snap)) == (
        0, "nothing to install\n", "")


class _Tty:
    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self.text += s
        return len(s)

    def flush(self) -> None:
        pass


def test_progress_bar_only_on_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from udriver.cli._clientopts import terminal_progress
    assert terminal_progress(io.StringIO()) is None  # not a terminal: no bar
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    tty = _Tty()
    bar = terminal_progress(tty)  # type: ignore[arg-type]
    assert bar is not None
    bar("http://h/targets/drivers/1234/abc.edu.whl", 51200, 102400, False)
    assert "\033[32m" in tty.text and "50 KiB" in tty.text
    monkeypatch.setenv("NO_COLOR", "1")
    plain = _Tty()
    bar = terminal_progress(plain)  # type: ignore[arg-type]
    assert bar is not None
    bar("http://h/targets/drivers/1234/abc.edu.whl", 102400, 102400, True)
    assert "\033" not in plain.text
    assert plain.text == "\redu.whl" + " " * 34 + "[" + "#" * 30 + "]     100 KiB\n"


def test_install_local_wheel_cli(capsys: pytest.CaptureFixture[str], env: Path,
                                 sysfs: Path) -> None:
    from udriver_vm.fakewheels import make_wheel
    w = make_wheel(env / "w", version="3.0")
    assert run(capsys, "install", "--wheel", str(w), "--sysfs-root", str(sysfs)) == (
        0, "installed edu 3.0\n", "")
    bad = make_wheel(env / "bad", version="3.1", corrupt_record=True)
    code, out, err = run(capsys, "install", "--wheel", str(bad), "--sysfs-root", str(sysfs))
    assert (code, out) == (1, "")
    assert err.startswith("error: Invalid wheel (RECORD check failed: ")
    assert run(capsys, "status") == (0, "edu 3.0\n", "")
