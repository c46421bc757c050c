"""A private apt configuration per Debian suite, used only to download pinned kernel packages.

Rules of this module:

* The host's apt never sees these suites. Each suite gets its own sources file, lists and
  archives directory under ``<cache>/apt/<suite>/``, and every apt call passes them with
  ``-o Dir::Etc::sourcelist=... -o Dir::Etc::sourceparts=-`` (apt.conf(5), "Directories").
  ``apt-get upgrade`` on the host therefore cannot pull a bullseye or sid package: nothing in
  ``/etc/apt`` names those suites.
* Trust comes from apt's own chain: ``apt-get update`` verifies the suite's ``InRelease``
  against ``Signed-By`` (the Debian archive keyring), the ``Packages`` index against the hash
  in ``InRelease``, and ``apt-get download`` the .deb against the index. On top of that,
  :meth:`SuiteApt.download` reads the ``SHA256`` field of the index entry (Debian policy 5.6.21
  for the .changes field; the ``Packages`` file carries it as in deb822 repository format) and
  checks the downloaded file against it, so the stamp can record the hash that was checked.
* Versions are pinned by the caller. :meth:`SuiteApt.resolve` only confirms that the pinned
  ``package=version`` still exists and, if not, raises an error naming what the suite offers
  now, so the fix (bump the pin) is in the message.
"""

from __future__ import annotations

import hashlib
import logging
import re
import subprocess
from pathlib import Path

__all__ = ["AptError", "SuiteApt"]

_log = logging.getLogger("udriver.vm.apt")
_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


class AptError(RuntimeError):
    """A private-suite apt step failed (message names the suite, package and version)."""


class SuiteApt:
    """apt-get/apt-cache bound to one suite through a private configuration directory."""

    def __init__(self, suite: str, mirror: str, root: Path) -> None:
        """Prepare ``root`` (``<cache>/apt/<suite>``) with a deb822 sources file for ``suite``.

        Args:
            suite: Debian suite name, e.g. ``bullseye`` or ``sid``.
            mirror: the archive URI (read from the host's sources, never hard-coded).
            root: private directory for sources, lists and downloaded archives.
        """
        self.suite = suite
        self.root = root
        for d in ("lists/partial", "archives/partial"):
            (root / d).mkdir(parents=True, exist_ok=True)
        self.sources = root / "suite.sources"
        text = (
            "# Written by udriver vm/udriver_vm/kernels.py; used only with -o Dir::Etc::sourcelist.\n"
            f"Types: deb\nURIs: {mirror}\nSuites: {suite}\nComponents: main\n"
            f"Signed-By: {_KEYRING}\n"
        )
        if not self.sources.is_file() or self.sources.read_text() != text:
            self.sources.write_text(text)

    def _opts(self) -> list[str]:
        return [
            "-o", f"Dir::Etc::sourcelist={self.sources}",
            "-o", "Dir::Etc::sourceparts=-",
            "-o", f"Dir::State::lists={self.root / 'lists'}",
            "-o", f"Dir::Cache::archives={self.root / 'archives'}",
            "-o", "Dir::Cache::pkgcache=",
            "-o", "Dir::Cache::srcpkgcache=",
            "-o", "APT::Get::List-Cleanup=0",
        ]  # fmt: skip

    def _run(self, tool: str, *args: str, cwd: Path | None = None, err: bool = False) -> str:
        argv = [tool, "-q", *self._opts(), *args]
        _log.info("+ %s %s (suite %s)", tool, " ".join(args), self.suite)
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise AptError(
                f"`{tool} {' '.join(args)}` for suite {self.suite} failed with rc "
                f"{proc.returncode}: {proc.stderr.strip()[-800:]}"
            )
        return proc.stdout + (proc.stderr if err else "")

    def update(self) -> None:
        """``apt-get update`` for this suite only (verifies InRelease with the keyring).

        Raises:
            AptError: the update failed or apt warned about the signature.
        """
        out = self._run("apt-get", "update", err=True)
        if re.search(r"^(W|E): .*(NO_PUBKEY|not signed|BADSIG|EXPKEYSIG)", out, re.MULTILINE):
            raise AptError(f"suite {self.suite}: the Release signature did not verify: {out}")

    def has_lists(self) -> bool:
        """True if an earlier :meth:`update` left a Packages index."""
        return any((self.root / "lists").glob("*_Packages*"))

    def versions(self, package: str) -> list[str]:
        """Return the versions of ``package`` the suite offers (``apt-cache madison``)."""
        try:
            out = self._run("apt-cache", "madison", package)
        except AptError:
            return []
        rows = [[f.strip() for f in line.split("|")] for line in out.splitlines()]
        return [row[1] for row in rows if len(row) >= 3]

    def resolve(self, package: str, version: str, similar: str) -> str:
        """Return the index ``SHA256`` of ``package=version``, or say what to bump.

        Args:
            package: pinned package name.
            version: pinned version.
            similar: regex for ``apt-cache search --names-only`` to list replacements.

        Raises:
            AptError: the pinned version is gone (message lists what the suite has now).
        """
        have = self.versions(package)
        if version not in have:
            if have:
                now = f"{package} versions {', '.join(have)}"
            else:
                found = self._run("apt-cache", "search", "--names-only", similar)
                now = ", ".join(line.split(" - ")[0] for line in found.splitlines()) or "nothing"
            raise AptError(
                f"pinned {package}={version} is no longer in Debian {self.suite} "
                f"(it offers: {now}); bump the pin in vm/udriver_vm/kernels.py `_PINNED`"
            )
        out = self._run("apt-cache", "show", f"{package}={version}")
        m = re.search(r"^SHA256:\s*([0-9a-f]{64})\s*$", out, re.MULTILINE)
        if not m:
            raise AptError(f"suite {self.suite}: no SHA256 field for {package}={version}")
        return m.group(1)

    def download(self, package: str, version: str, sha256: str, dest: Path) -> Path:
        """``apt-get download package=version`` into ``dest``; check it against ``sha256``.

        Raises:
            AptError: the download failed, or the file's hash differs from the index.
        """
        for old in dest.glob(f"{package}_*.deb"):
            old.unlink()
        self._run("apt-get", "download", f"{package}={version}", cwd=dest)
        debs = list(dest.glob(f"{package}_*.deb"))
        if len(debs) != 1:
            raise AptError(f"apt-get download {package}={version} left {len(debs)} files")
        h = hashlib.sha256()
        with debs[0].open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != sha256:
            raise AptError(
                f"{debs[0].name}: sha256 {h.hexdigest()} differs from the {self.suite} "
                f"Packages index ({sha256})"
            )
        return debs[0]
