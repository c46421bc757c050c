"""`udriver-repo` has a man page and shell completion, as `udriver` has (issue 13).

The page ships in the repo-server wheel's data (repo-server/man/udriver-repo.1) and is
written from the command's own parser (`udriver_repo.cli.man_page_text`), so this test
fails when the committed page no longer says what `udriver-repo --help` says. Completion
answers from the same parser, through argcomplete's protocol (`udriver.cli.complete`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "repo-server" / "man" / "udriver-repo.1"
COMPLETION = ROOT / "repo-server" / "completion" / "udriver-repo"
REGENERATE = ("env -i PATH=/usr/bin:/bin COLUMNS=80 .venv/bin/python -c \"from pathlib import "
              "Path; from udriver_repo.cli import man_page_text; Path('repo-server/man/"
              "udriver-repo.1').write_text(man_page_text('YYYY-MM-DD'))\"")


def _clean_env(**extra: str) -> dict[str, str]:
    """No UDRIVER_* (an option's default would show in the help text) and 80 columns."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UDRIVER_")}
    return {**env, "COLUMNS": "80", **extra}


def test_the_committed_man_page_is_the_parsers() -> None:
    pytest.importorskip("udriver_repo", reason="repo-server not installed")
    text = PAGE.read_text()
    m = re.match(r'\.TH UDRIVER-REPO 1 "(\d{4}-\d\d-\d\d)" "udriver-repo ', text)
    assert m, text[:200]
    code = ("import sys; from udriver_repo.cli import man_page_text; "
            "sys.stdout.write(man_page_text(sys.argv[1]))")
    r = subprocess.run([sys.executable, "-c", code, m.group(1)], env=_clean_env(), capture_output=True, text=True,
                       check=True, timeout=120)
    assert r.stdout == text, f"regenerate it: {REGENERATE}"
    for command in ("init", "vendor add", "publish", "serve", "verify", "names assign"):
        assert f".SS udriver-repo {command}\n" in text


def test_the_man_page_renders(tmp_path: Path) -> None:
    if not Path("/usr/bin/man").exists():
        pytest.fail("needs man (man-db)")
    r = subprocess.run(["man", "-l", str(PAGE)], env={**os.environ, "MANWIDTH": "80",
                                                      "MANPAGER": "cat", "PAGER": "cat"},
                       capture_output=True, text=True, check=True, timeout=60)
    assert "udriver-repo - Create and run a signed udriver repository" in r.stdout
    assert "--repo DIR" in r.stdout and "warning" not in r.stderr.lower()


def test_the_repo_server_wheel_ships_both() -> None:
    text = (ROOT / "repo-server" / "pyproject.toml").read_text()
    assert '"share/man/man1" = ["man/udriver-repo.1"]' in text
    assert '"share/bash-completion/completions" = ["completion/udriver-repo"]' in text
    assert "complete -o nospace -o default -o bashdefault -F _udriver_repo udriver-repo" \
        in COMPLETION.read_text()


def _complete(line: str, tmp_path: Path) -> set[str]:
    """What argcomplete answers for `line` (the cursor at its end)."""
    out = tmp_path / "completions"
    r = subprocess.run([sys.executable, "-c", "from udriver_repo.cli import run; run()"],
                       env=_clean_env(_ARGCOMPLETE="1", _ARGCOMPLETE_SHELL="bash", COMP_LINE=line,
                                      COMP_POINT=str(len(line)),
                                      _ARGCOMPLETE_STDOUT_FILENAME=str(out)),
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    return {w.strip() for w in out.read_text().split("\v") if w.strip()}


def test_completes_subcommands_and_options(tmp_path: Path) -> None:
    pytest.importorskip("udriver_repo", reason="repo-server not installed")
    assert {"init", "vendor", "publish", "serve", "verify"} <= _complete("udriver-repo ",
                                                                        tmp_path)
    assert _complete("udriver-repo pu", tmp_path) == {"publish"}
    assert {"add", "list", "revoke"} <= _complete("udriver-repo vendor ", tmp_path)
    assert _complete("udriver-repo serve --po", tmp_path) == {"--port"}


def test_the_shipped_bash_file_completes(tmp_path: Path) -> None:
    """repo-server/completion/udriver-repo, sourced by bash, asks the `udriver-repo` on
    PATH (here this checkout's, through a wrapper) and fills COMPREPLY."""
    pytest.importorskip("udriver_repo", reason="repo-server not installed")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "udriver-repo").write_text(f"#!/bin/sh\nexec {sys.executable} -c "
                                         f"'from udriver_repo.cli import run; run()' \"$@\"\n")
    (bindir / "udriver-repo").chmod(0o755)
    script = (f"source {COMPLETION}\n"
              "COMP_LINE='udriver-repo rot'; COMP_POINT=${#COMP_LINE}\n"
              "COMP_WORDS=(udriver-repo rot); COMP_CWORD=1\n"
              "_udriver_repo udriver-repo rot udriver-repo\n"
              "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    r = subprocess.run(["bash", "-c", script], env=_clean_env(PATH=f"{bindir}:/usr/bin:/bin"),
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["rotate-key"]
