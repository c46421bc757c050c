"""`udriver._log`: loggers that import `logging` at their first record.

As a library, every record reaches `logging` from the caller's line; under the `udriver`
command, records below the `-v` level are dropped before `logging` is imported, and a
record at or above it is formatted (and masked) as before.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from udriver import _log

ROOT = Path(__file__).resolve().parents[2]


def test_records_reach_logging_from_the_callers_line(caplog: pytest.LogCaptureFixture) -> None:
    log = _log.getLogger("udriver.test")
    with caplog.at_level(logging.DEBUG, logger="udriver.test"):
        log.debug("one %s", "arg")
        log.info("two")
        log.warning("three")
        log.error("four")
        log.log(logging.INFO, "five")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("DEBUG", "one arg"), ("INFO", "two"), ("WARNING", "three"), ("ERROR", "four"),
        ("INFO", "five")]
    assert {r.pathname for r in caplog.records} == {__file__}
    assert {r.funcName for r in caplog.records} == {
        "test_records_reach_logging_from_the_callers_line"}


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)


def test_below_the_level_nothing_is_imported() -> None:
    r = _run("import sys\n"
             "from udriver import _log\n"
             "_log.configure(30, lambda: print('SETUP', file=sys.stderr))\n"
             "_log.getLogger('x').info('dropped')\n"
             "print('logging' in sys.modules)\n"
             "_log.getLogger('x').warning('kept %s', 1)\n"
             "print('logging' in sys.modules)\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "True"]
    assert r.stderr.splitlines() == ["SETUP", "kept 1"]  # set up once, before the record


def test_ready_sets_up_once() -> None:
    r = _run("from udriver import _log\n"
             "_log.configure(30, lambda: print('SETUP'))\n"
             "_log.ready(); _log.ready()\n")
    assert r.stdout.split() == ["SETUP"]


def test_a_deferred_command_still_formats_its_warning(tmp_path: Path) -> None:
    """`udriver devices` with a broken repository file: its warning is printed as every
    warning is (`WARNING: ...`), and the command carries on."""
    repos = tmp_path / "etc" / "repos.d"
    repos.mkdir(parents=True)
    (repos / "bad.json").write_text("{not json")
    env = dict(os.environ, UDRIVER_CONFIG_DIR=str(tmp_path / "etc"),
               UDRIVER_STATE_DIR=str(tmp_path / "var"),
               UDRIVER_SYSFS_ROOT=str(ROOT / "tests/fixtures/sysfs/small-vm"))
    r = subprocess.run([sys.executable, "-c", "from udriver.cli import run; run()", "devices"],
                       capture_output=True, text=True, env=env, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("WARNING: ") and "bad.json" in lines[0]
    assert r.stdout.startswith("BDF ")
