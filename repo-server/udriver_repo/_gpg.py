"""The apt view's OpenPGP key, driven through `gpg --batch` (GnuPG 2.2).

The GnuPG home is `REPO/gnupg` (0700). gpg-agent puts its sockets in the home
directory unless /run/user/<uid> exists, and a Unix socket path is limited to 108
bytes (unix(7)), so gpg is pointed at a short symlink in the temp directory instead of
the possibly long real path.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import tempfile
from pathlib import Path

from udriver.errors import RepositoryError

__all__ = ["Gpg", "stop_agents"]

log = logging.getLogger(__name__)

# Every home this process ran gpg in: gpg autostarts a gpg-agent per home, which outlives
# the command (gpg-agent(1)); `udriver-repo` stops them all when it exits (stop_agents).
_USED: dict[str, Gpg] = {}

_UID = "udriver repository <repository@udriver.invalid>"


class Gpg:
    """One GnuPG home holding one signing key (no passphrase)."""

    def __init__(self, home: Path) -> None:
        self.home = home.resolve() if home.exists() else home

    def _short_home(self) -> str:
        real = str(self.home.resolve())
        link = Path(tempfile.gettempdir()) / f"udr-gpg-{hashlib.sha256(real.encode()).hexdigest()[:12]}"
        try:
            if os.readlink(link) == real:
                return str(link)
            link.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            link.unlink(missing_ok=True)
        try:
            os.symlink(real, link)
        except FileExistsError:
            pass
        return str(link)

    def run(self, *args: str, data: bytes | None = None) -> bytes:
        """Run gpg with this home; return stdout.

        Raises:
            RepositoryError: gpg missing or failed (its stderr is in the message).
        """
        cmd = ["gpg", "--batch", "--no-tty", "--quiet", "--homedir", self._short_home(), *args]
        _USED[str(self.home)] = self
        try:
            p = subprocess.run(cmd, input=data, capture_output=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise RepositoryError(f"cannot run gpg: {e}") from e
        if p.returncode != 0:
            raise RepositoryError(f"gpg {args[0]} failed (exit {p.returncode}): "
                                  f"{p.stderr.decode(errors='replace').strip()}")
        return p.stdout

    def create(self) -> None:
        """Create the home and an ed25519 signing key that does not expire."""
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.home = self.home.resolve()
        self.run("--passphrase", "", "--pinentry-mode", "loopback",
                 "--quick-gen-key", _UID, "ed25519", "sign", "never")

    def export(self, armor: bool) -> bytes:
        return self.run("--export", *(["--armor"] if armor else []), _UID)

    def fingerprint(self) -> str:
        out = self.run("--with-colons", "--list-keys", _UID).decode()
        for line in out.splitlines():
            if line.startswith("fpr:"):
                return line.split(":")[9]
        raise RepositoryError("gpg: no fingerprint for the repository key")

    def clearsign(self, data: bytes) -> bytes:
        """InRelease: the Release text clear-signed (SHA-512 digest)."""
        return self.run("--digest-algo", "SHA512", "--local-user", _UID, "--clearsign",
                        "--output", "-", data=data)

    def detach_sign(self, data: bytes) -> bytes:
        """Release.gpg: an armoured detached signature."""
        return self.run("--digest-algo", "SHA512", "--local-user", _UID, "--armor",
                        "--detach-sign", "--output", "-", data=data)

    def stop_agent(self) -> None:
        """Stop this home's gpg-agent and remove the short symlink (tests and shutdown)."""
        link = self._short_home()
        try:
            subprocess.run(["gpgconf", "--homedir", link, "--kill", "gpg-agent"],
                           capture_output=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:  # pragma: no cover
            log.warning("cannot stop gpg-agent: %s", e)
        Path(link).unlink(missing_ok=True)
        _USED.pop(str(self.home), None)


def stop_agents() -> None:
    """Stop the gpg-agent of every home this process used (a command's exit)."""
    for gpg in list(_USED.values()):
        gpg.stop_agent()
