"""Shell completion and the man page, for pip users too (issue 13).

Completion goes through argcomplete's protocol exactly as bash drives it: the command runs
with `_ARGCOMPLETE`, `COMP_LINE` and `COMP_POINT` set and answers with the candidates.
The shipped bash file (completion/udriver, in the wheel's data and the .deb) is sourced
by a real bash and asked through `complete`'s own variables.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from udriver_repo.cli import build_parser as repo_parser

from udriver import __version__
from udriver.cli import build_parser
from udriver.cli._manpage import render

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = ROOT / "tests" / "fixtures" / "sysfs" / "small-vm"
BDFS = sorted(p.name for p in (SNAPSHOT / "sys/bus/pci/devices").iterdir())


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    state = tmp_path / "var"
    cur = state / "drivers" / "acme" / "current" / "udriver_acme-0.1.0.dist-info"
    cur.mkdir(parents=True)  # `udriver install`'s layout, as tests/unit/test_runtime_runner.py
    (cur / "METADATA").write_text("Metadata-Version: 2.1\nName: udriver-acme\nVersion: 0.1.0\n")
    (cur / "entry_points.txt").write_text("[udriver.drivers]\nacme = acme.driver:AcmeDriver\n")
    (tmp_path / "etc" / "repos.d").mkdir(parents=True)
    (tmp_path / "etc" / "repos.d" / "main.json").write_text("{}")
    return dict(os.environ, UDRIVER_SYSFS_ROOT=str(SNAPSHOT), UDRIVER_STATE_DIR=str(state),
                UDRIVER_CONFIG_DIR=str(tmp_path / "etc"),
                UDRIVER_DEB_DRIVER_DIR=str(tmp_path / "debs"))


def _complete(line: str, env: dict[str, str], tmp_path: Path) -> list[str]:
    out = tmp_path / "completions"
    r = subprocess.run([sys.executable, "-c", "from udriver.cli import run; run()"],
                       env={**env, "_ARGCOMPLETE": "1", "_ARGCOMPLETE_SHELL": "bash",
                            "COMP_LINE": line, "COMP_POINT": str(len(line)),
                            "_ARGCOMPLETE_STDOUT_FILENAME": str(out)},
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    return sorted(w.strip() for w in out.read_text().split("\v") if w.strip())


@pytest.mark.parametrize("line,want", [
    ("udriver bi", ["bind"]),
    ("udriver bind ", BDFS),
    ("udriver bind 0000:00:0", BDFS),
    ("udriver run --device 0000:00:03", ["0000:00:03.0"]),
    ("udriver install --device ", BDFS),
    ("udriver run --driver ", ["acme"]),
    ("udriver remove a", ["acme"]),
    ("udriver rollback ", ["acme"]),
    ("udriver repo remove m", ["main"]),
    ("udriver install --of", ["--offline"]),
])
def test_completion(line: str, want: list[str], env: dict[str, str], tmp_path: Path) -> None:
    assert _complete(line, env, tmp_path) == want


def test_the_shipped_bash_file_completes(env: dict[str, str], tmp_path: Path) -> None:
    """completion/udriver, sourced by bash, asks the `udriver` on PATH (here this checkout's,
    through a wrapper) and fills COMPREPLY."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "udriver").write_text(f"#!/bin/sh\nexec {sys.executable} -c "
                                    f"'from udriver.cli import run; run()' \"$@\"\n")
    (bindir / "udriver").chmod(0o755)
    script = (f"source {ROOT / 'completion' / 'udriver'}\n"
              "COMP_LINE='udriver unbind 0000:00:0'; COMP_POINT=${#COMP_LINE}\n"
              "COMP_WORDS=(udriver unbind 0000:00:0); COMP_CWORD=2\n"
              "_udriver udriver 0000:00:0 unbind\n"
              "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    r = subprocess.run(["bash", "-c", script], env={**env, "PATH": f"{bindir}:/usr/bin:/bin"},
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    # `:` is in COMP_WORDBREAKS: bash replaces only the text after the word's last `:`.
    assert sorted(r.stdout.split()) == [b.rsplit(":", 1)[1] for b in BDFS]


@pytest.mark.parametrize("prog", ["udriver", "udriver-repo"])
def test_man_page_from_the_parser(prog: str, tmp_path: Path) -> None:
    parser = build_parser(None) if prog == "udriver" else repo_parser()
    page = render(parser, prog, __version__, "2026-01-01")
    assert page.startswith(f'.TH {prog.upper()} 1 "2026-01-01"')
    leaves = {"udriver": ["devices", "bind", "repo add", "upload", "autobind"],
              "udriver-repo": ["init", "vendor add", "serve"]}[prog]
    for leaf in leaves:
        assert f"\n.SS {prog} {leaf}\n" in page
    if shutil.which("groff") is None:
        pytest.fail("needs groff (man-db's groff-base)")
    path = tmp_path / f"{prog}.1"
    path.write_text(page)
    r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(path)], capture_output=True,
                       text=True, timeout=60, check=False)
    assert (r.returncode, r.stderr) == (0, "")  # no roff warning: every line is text or a macro
