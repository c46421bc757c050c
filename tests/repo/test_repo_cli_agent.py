"""No `udriver-repo` command leaves a gpg-agent running (issue 13).

gpg autostarts one gpg-agent per GnuPG home (gpg-agent(1)), and it outlived every
`udriver-repo` command that signed or read the apt key. Each command here runs as its own
process, as a user runs it; afterwards no process is a gpg-agent for the repository's home.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _agents_for(home: Path) -> list[str]:
    """Command lines of the running gpg-agents whose --homedir resolves to `home`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not argv or not argv[0].endswith(b"gpg-agent"):
            continue
        args = [os.fsdecode(a) for a in argv]
        if "--homedir" in args:
            given = Path(args[args.index("--homedir") + 1])
            if given.exists() and given.resolve() == home.resolve():
                found.append(" ".join(args))
    return found


def _repo(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from udriver_repo.cli import run; run()",
                           *argv], capture_output=True, text=True, timeout=300, check=False)


def test_no_gpg_agent_is_left_running(tmp_path: Path, edu_files: list[Path]) -> None:
    repo = tmp_path / "repo"
    steps = [("init", "--repo", str(repo)),
             ("vendor", "add", "qemu", "--pci-vendor", "1234", "--repo", str(repo)),
             ("publish", "--vendor", "qemu", "--repo", str(repo), *map(str, edu_files)),
             ("refresh", "--repo", str(repo)),
             ("verify", "--repo", str(repo))]
    for argv in steps:
        r = _repo(*argv)
        assert r.returncode == 0, (argv, r.stderr)
        assert _agents_for(repo / "gnupg") == [], argv
    # The apt view was signed (so gpg, and with it an agent, did run).
    assert (repo / "public" / "dists" / "stable" / "InRelease").is_file()
