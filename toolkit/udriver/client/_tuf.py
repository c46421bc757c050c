"""python-tuf, adapted: the offline updater and the translation of its exceptions.

`tuf_error` turns python-tuf's exceptions into udriver's closed set:

    ExpiredMetadataError       -> RepositoryError "expired <role> metadata (expired <date>)"
    BadVersionNumberError      -> RepositoryError "rollback attack: ..."
    UnsignedMetadataError      -> RepositoryError "bad signature: ..."
    LengthOrHashMismatchError  -> RepositoryError "... does not match its signed hash ..."
    DownloadHTTPError/others   -> DownloadError

Offline mode: python-tuf 7 has no offline switch, so `OfflineUpdater` replaces
`refresh()` by loading the cached top-level metadata through the same
`TrustedMetadataSet` (signatures, versions and expiry are checked exactly as online,
TUF specification 1.0 section 5.3-5.6); its fetcher (`_fetcher.OfflineFetcher`) refuses
the network.
"""

from __future__ import annotations

import re

from tuf.api import exceptions as tuf_exc
from tuf.api.metadata import Root, Targets, Timestamp  # type: ignore[attr-defined]
from tuf.ngclient.updater import Updater

from ..errors import DownloadError, RepositoryError, UdriverError

__all__ = ["OfflineUpdater", "tuf_error"]

_EXPIRED_RE = re.compile(r"(root|timestamp|snapshot|targets|[\w.-]+?)(?:\.json)? is expired")


class OfflineUpdater(Updater):
    """An Updater whose refresh reads only the metadata cache (see module docstring)."""

    def refresh(self) -> None:
        # 5.3: newer roots only from root_history/ (the OfflineFetcher answers 404).
        self._load_root()
        # 5.4: the cached timestamp must verify AND be unexpired; online, an expired
        # local timestamp is only used for rollback protection of the new one.
        try:
            data = self._load_local_metadata(Timestamp.type)
        except OSError as e:
            raise tuf_exc.DownloadError("offline: no cached timestamp metadata; "
                                        "run once without --offline") from e
        self._trusted_set.update_timestamp(data)
        # 5.5 and 5.6: python-tuf uses the local copies when they are valid as final;
        # if not, it would fetch, and the OfflineFetcher refuses.
        self._load_snapshot()
        self._load_targets(Targets.type, Root.type)


def _role_expiry(updater: Updater | None, role: str) -> str:
    if updater is None or role not in ("root", "timestamp", "snapshot", "targets"):
        return ""
    ts = updater._trusted_set
    try:
        md = ts[role]  # the set keeps an expired role it refused as final (TUF 5.4.4)
    except KeyError:
        return ""
    return md.expires.strftime("%Y-%m-%dT%H:%M:%SZ")


def tuf_error(e: Exception, repo: str, updater: Updater | None = None,
              what: str = "") -> UdriverError:
    """Translate a python-tuf exception into a udriver error with a clear message."""
    where = f"repository {repo!r}" + (f", {what}" if what else "")
    if isinstance(e, tuf_exc.ExpiredMetadataError):
        m = _EXPIRED_RE.search(str(e))
        role = m.group(1) if m else "repository"
        role = role.removeprefix("New ")
        date = _role_expiry(updater, role)
        when = f" (expired {date})" if date else ""
        err: UdriverError = RepositoryError(f"{where}: expired {role} metadata{when}")
        err.hint = "the repository must re-sign its metadata; if this persists, ask its operator"
        return err
    if isinstance(e, tuf_exc.BadVersionNumberError):
        return RepositoryError(f"{where}: rollback attack: {e} "
                               f"(the server offered older metadata than this machine trusts)")
    if isinstance(e, tuf_exc.UnsignedMetadataError):
        return RepositoryError(f"{where}: bad signature: {e}")
    if isinstance(e, tuf_exc.LengthOrHashMismatchError):
        return RepositoryError(f"{where}: downloaded file does not match its signed length/hash "
                               f"(tampered or corrupt): {e}")
    if isinstance(e, tuf_exc.DownloadHTTPError):
        return DownloadError(f"{where}: {e}")
    if isinstance(e, tuf_exc.SlowRetrievalError):
        return DownloadError(f"{where}: server too slow: {e}")
    if isinstance(e, tuf_exc.DownloadError):
        # The fetcher already named the cause of a network failure (it raises without
        # urllib3's retry chain, which repeated here only buries it).
        cause = f" ({e.__cause__})" if e.__cause__ and not isinstance(e.__cause__, OSError) else ""
        err = DownloadError(f"{where}: download failed: {e}{cause}")
        if str(e).startswith("cannot fetch "):  # no answer at all (HttpFetcher._fetch)
            err.hint = ("is the repository's server up, and its URL right? `udriver repo list` "
                        "shows it; --offline uses what this machine has cached")
        return err
    if isinstance(e, tuf_exc.RepositoryError):
        return RepositoryError(f"{where}: metadata failed verification: {e}")
    return RepositoryError(f"{where}: {type(e).__name__}: {e}")
