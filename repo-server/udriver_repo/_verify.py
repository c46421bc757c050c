"""`udriver-repo verify`: check the tree the way a fresh client would.

TUF: a plain `tuf.ngclient.Updater` with an empty metadata cache, bootstrapped from the
repository's first root, runs the client workflow (TUF spec 5.3 root chain, 5.4
timestamp, 5.5 snapshot, 5.6 targets and delegations), then downloads and verifies
every index target and every driver file the indexes name (5.7). The indexes are found
through the verified metadata itself: probing one path per bin loads every bin, and the
bins' delegations name each vendor's shard directory `index/<vvvv>/*`, whose 17 possible
shard names (`0`..`f`, `any`) are probed, and its format-1 `index/<vvvv>.json`.
When top-level targets delegates `names`, every entry's driver and distribution names
must be owned (signed `names/<name>` records) by the vendor role delegated its index,
or, in the repository-signed class index, by the entry's `vendor`.

apt: `InRelease` must verify with gpgv against `keys/apt.gpg`, the by-hash Packages it
names must match, and every deb named in Packages must match its size and SHA256.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import requests
from tuf.api import exceptions as tuf_exc
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface

from udriver.errors import RepositoryError
from udriver.repoformat import (
    NAMES_ROLE,
    IndexEntry,
    claimed_names,
    name_target,
    parse_index,
    publisher_of,
)

from ._meta import BINS
from ._owners import owner_of
from ._packages import parse_packages, release_packages_sha
from ._types import VerifyReport

__all__ = ["FileFetcher", "verify_tree"]


class FileFetcher(FetcherInterface):
    """Serves `file://` URLs from a directory (python-tuf's fetcher interface)."""

    def _fetch(self, url: str) -> Iterator[bytes]:
        path = Path(unquote(urlparse(url).path))
        try:
            data = path.read_bytes()
        except FileNotFoundError as e:
            raise tuf_exc.DownloadHTTPError(f"not found: {path}", 404) from e
        return iter([data])


def _get(public: Path | None, url: str | None, rel: str) -> bytes | None:
    if public is not None:
        try:
            return (public / rel).read_bytes()
        except FileNotFoundError:
            return None
    assert url is not None
    try:
        r = requests.get(f"{url.rstrip('/')}/{rel}", timeout=30)
    except requests.RequestException as e:
        raise _unreachable(url, str(e)) from e
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return r.content


def _unreachable(url: str, why: str) -> RepositoryError:
    from udriver.client import mask_secrets
    err = RepositoryError(f"cannot reach {mask_secrets(url)}: {why}")
    err.hint = "is `udriver-repo serve` running there? (it prints its URL when it starts)"
    return err


def verify_tree(root: bytes, public: Path | None = None, url: str | None = None) -> VerifyReport:
    """Verify the tree at `public` (a directory) or `url` (its HTTP base), trusting `root`.

    Raises:
        RepositoryError: `url` is not http(s), or its server cannot be reached (a
            connection failure is the user's mistake to fix, not a finding about the tree).
    """
    report = VerifyReport()
    fetcher: FetcherInterface
    if public is not None:
        fetcher = FileFetcher()
    else:
        # udriver's own fetcher names a failed connection by its cause ("connection
        # refused"), where python-tuf's default said `SlowRetrievalError` (issue 13).
        from udriver.client import FetchOptions, HttpFetcher
        if urlparse(url or "").scheme not in ("http", "https"):
            raise RepositoryError(f"Invalid repository URL (scheme must be http or https): "
                                  f"{url!r}")
        fetcher = HttpFetcher(FetchOptions(retries=1))
    base = public.as_uri() if public is not None else (url or "").rstrip("/")
    with tempfile.TemporaryDirectory(prefix="udriver-verify-") as tmp:
        md_dir, t_dir = Path(tmp) / "metadata", Path(tmp) / "targets"
        md_dir.mkdir()
        t_dir.mkdir()
        up = Updater(str(md_dir), f"{base}/metadata/", str(t_dir), f"{base}/targets/",
                     fetcher=fetcher, bootstrap=root)
        try:
            up.refresh()
            for b in BINS:
                up.get_targetinfo(f"index/00{b[4:]}.json")
        except tuf_exc.DownloadError as e:
            if url is not None and not isinstance(e, tuf_exc.DownloadHTTPError) \
                    and str(e).startswith("cannot fetch "):
                raise _unreachable(url, str(e).rsplit(": ", 1)[-1]) from e
            report.problem(f"TUF: {type(e).__name__}: {e}")
            return report
        except tuf_exc.RepositoryError as e:
            report.problem(f"TUF: {type(e).__name__}: {e}")
            return report
        for role in ("root", "timestamp", "snapshot", "targets"):
            report.versions[role] = json.loads((md_dir / f"{role}.json").read_bytes())[
                "signed"]["version"]
        names = {"class"}
        signers = {"class": "class"}
        for b in BINS:
            p = md_dir / f"{b}.json"
            if p.exists():
                signed = json.loads(p.read_bytes())["signed"]
                for r in (signed.get("delegations") or {}).get("roles", []):
                    for x in r["paths"]:
                        if x.startswith("index/") and x.endswith("/*"):  # shards
                            v = x[len("index/"):-len("/*")]
                            shards = [f"{v}/{d:x}" for d in range(16)] + [f"{v}/any"]
                            names.update(shards)
                            signers.update(dict.fromkeys(shards, r["name"]))
                        elif x.startswith("index/"):  # a format-1 per-vendor index
                            names.add(x[len("index/"):-len(".json")])
                            signers[x[len("index/"):-len(".json")]] = r["name"]
        top = json.loads((md_dir / "targets.json").read_bytes())["signed"]
        owned = NAMES_ROLE in {r["name"] for r in
                               (top.get("delegations") or {}).get("roles", [])}
        for name in sorted(names):
            _check_index(up, name, t_dir, report, signers.get(name, "") if owned else None)
    _check_apt(public, url, report)
    return report


def _check_index(up: Updater, name: str, t_dir: Path, report: VerifyReport,
                 signer: str | None) -> None:
    """Download `index/<name>.json` and every file it names; with `signer` (the role
    delegated that index; None when the repository records no owners), check that the
    signer, or a class entry's `vendor`, owns each entry's names (`_owners`)."""
    try:
        info = up.get_targetinfo(f"index/{name}.json")
        if info is None:
            return
        path = up.download_target(info, str(t_dir / f"index-{name}.json"))
        entries = parse_index(Path(path).read_bytes(), name)
        report.indexes += 1
        for e in entries:
            if signer is not None:
                _check_owner(up, name, signer, e, report)
            for target in e.files.values():
                tinfo = up.get_targetinfo(target)
                if tinfo is None:
                    report.problem(f"index/{name}.json names {target}, which no role signs")
                    continue
                up.download_target(tinfo, str(t_dir / hashlib.sha256(target.encode()).hexdigest()))
                report.files += 1
    except Exception as e:  # noqa: BLE001 - every failure is a finding
        report.problem(f"index/{name}.json: {type(e).__name__}: {e}")


def _check_owner(up: Updater, index: str, signer: str, e: IndexEntry,
                 report: VerifyReport) -> None:
    publisher = publisher_of(signer, e.vendor)
    for n in claimed_names(e.driver, e.package):
        owner = owner_of(up.get_targetinfo(name_target(n)))
        if owner is None:
            report.problem(f"index/{index}.json lists {e.driver} {e.version}: the name "
                           f"`{n}` has no owner record")
        elif publisher and owner != publisher:
            report.problem(f"index/{index}.json lists {e.driver} {e.version} from "
                           f"{publisher!r}: the name `{n}` belongs to {owner!r}")


def _check_apt(public: Path | None, url: str | None, report: VerifyReport) -> None:
    inrelease = _get(public, url, "dists/stable/InRelease")
    keyring = _get(public, url, "keys/apt.gpg")
    if inrelease is None or keyring is None:
        report.problem("apt: dists/stable/InRelease or keys/apt.gpg missing")
        return
    with tempfile.TemporaryDirectory(prefix="udriver-verify-") as tmp:
        kr = Path(tmp) / "apt.gpg"
        kr.write_bytes(keyring)
        p = subprocess.run(["gpgv", "--keyring", str(kr), "--output", "-"], input=inrelease,
                           capture_output=True, check=False, timeout=60)
    if p.returncode != 0:
        report.problem(f"apt: InRelease does not verify: {p.stderr.decode(errors='replace')}")
        return
    sha = release_packages_sha(p.stdout.decode())
    data = _get(public, url, f"dists/stable/main/binary-amd64/by-hash/SHA256/{sha}") \
        if sha else None
    if data is None or hashlib.sha256(data).hexdigest() != sha:
        report.problem(f"apt: Packages by-hash/SHA256/{sha} missing or corrupt")
        return
    stanzas = parse_packages(data)
    for filename, fields in stanzas.items():
        deb = _get(public, url, filename)
        if deb is None or hashlib.sha256(deb).hexdigest() != fields.get("SHA256") \
                or str(len(deb)) != fields.get("Size"):
            report.problem(f"apt: {filename} missing or does not match Packages")
        report.apt_packages += 1

