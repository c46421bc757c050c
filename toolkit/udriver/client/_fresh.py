"""Is the verified metadata cache still the server's? Asked without python-tuf.

An online `udriver search` (and `devices --refresh`, and the index reads of `show`,
`install` and `update`) must first run the root and timestamp steps of the TUF client
workflow (`_lookup`, point 4). Loading python-tuf and its crypto stack for them costs
four times `lspci -nnk`'s whole run (issue 13, acceptance 6), while on most runs the
server's answer is "nothing new". `unchanged` asks the server exactly the questions
those steps ask and, when the answers are "nothing new", lets the derived lookup answer
without importing python-tuf. Any other answer, and any doubt, means the full path
(`RemoteRepo.refresh_timestamp`), which behaves exactly as before.

The steps, as the TUF specification 1.0.34 numbers them, with root N and the timestamp
taken from the lookup's own key (the cached files its answers were derived from,
`Lookup.verified`):

1. 5.3.3: try `N+1.root.json` (and any newer root cached locally in `root_history/`,
   which python-tuf would load first): it must not exist (HTTP 404 or 403, python-tuf's
   rule); a newer root means the full path (5.3.4-5.3.9 verify it).
2. 5.3.10: the trusted root must not have expired.
3. 5.4.1: download `timestamp.json`, at most python-tuf's default timestamp length.
4. 5.4.2 and 5.4.3.1: it must be byte for byte the cached timestamp. Those bytes were
   verified under this same root N (the lookup is keyed to both files, `_lookup` point
   2), and signature verification is a function of the bytes and the root's keys, so
   they verify again; the version is equal, which the specification calls normal:
   "discard the new timestamp metadata and abort the update cycle", nothing is new.
5. 5.4.4: the (trusted, unchanged) timestamp must not have expired.

The lookup then applies its own expiry, the earliest of every role its answers rest on
(`_lookup`, point 3), so snapshot, targets and delegated roles (5.5.6, 5.6.6) are
checked too. Skipped are only the signature checks of bytes already verified under the
same keys; an attacker on the network gains nothing from that: replaying the same
timestamp and refusing `N+1.root.json` is what it could equally do to the full client,
and both then stop trusting the cache when that timestamp expires.

Whatever `_rawhttp.get` does not handle itself (a proxy, a redirect, TLS or connection
failure, a timeout, a malformed answer) declines, and the full path, with the whole
fetcher (`_fetcher.HttpFetcher`: retries, proxies), asks again and reports any error
exactly as before; a refused connection costs one extra, immediate attempt.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._log import getLogger
from ..errors import UdriverError
from ._lookup import expired
from ._rawhttp import ca_bundle, get

if TYPE_CHECKING:
    from ._config import RepoConfig
    from ._lookup import Lookup

__all__ = ["ROOT_STATUS_NONE", "TIMESTAMP_MAX_LENGTH", "unchanged"]

log = getLogger(__name__)

TIMESTAMP_MAX_LENGTH = 16384
"""python-tuf's `UpdaterConfig.timestamp_max_length` (the X of TUF spec 5.4.1)."""
ROOT_STATUS_NONE = (403, 404)
"""The answers to `N+1.root.json` that python-tuf takes for "no newer root"."""


def _signed(data: bytes, role: str) -> dict[str, Any]:
    signed = json.loads(data)["signed"]
    if not isinstance(signed, dict) or signed.get("_type") != role:
        raise ValueError(f"not {role} metadata")
    return signed


def unchanged(config: RepoConfig, lookup: Lookup, *, metadata_dir: Path | None = None,
              metadata_url: str | None = None, timeout: float = 2.0) -> bool:
    """Whether the server has nothing newer than the metadata `lookup` was derived from
    (module docstring: no newer root, an unexpired root, and the same unexpired
    timestamp, byte for byte). False whenever that is not certain (logged at debug).

    Args:
        config: the repository.
        lookup: its derived lookup (`_lookup.Lookup`).
        metadata_dir: its metadata cache (default `<state>/metadata`).
        metadata_url: its metadata URL (default `config.metadata_url`).
        timeout: seconds to connect, and between reads.
    """
    raw = lookup.verified()
    if raw is None:
        log.debug("%s: no usable lookup; full refresh", config.name)
        return False
    try:
        root, ts = _signed(raw["root"], "root"), _signed(raw["timestamp"], "timestamp")
        version = root["version"]
        if type(version) is not int or version < 1:
            raise ValueError(f"bad root version {version!r}")
    except (ValueError, KeyError, TypeError) as e:
        log.debug("%s: cached metadata unreadable (%s); full refresh", config.name, e)
        return False
    for role, signed in (("root", root), ("timestamp", ts)):
        if expired(signed.get("expires")):  # TUF spec 5.3.10, 5.4.4: the full path reports it
            log.debug("%s: cached %s expired; full refresh", config.name, role)
            return False
    cache = metadata_dir or config.state / "metadata"
    if (cache / "root_history" / f"{version + 1}.root.json").exists():
        return False  # python-tuf loads a newer cached root first (5.3)
    base = metadata_url or config.metadata_url
    base = base if base.endswith("/") else base + "/"
    try:
        kw: dict[str, Any] = {"auth": config.credentials(),
                              "cafile": ca_bundle(config.ca_bundle), "timeout": timeout}
        newer = get(f"{base}{version + 1}.root.json", limit=0, body=False, **kw)  # 5.3.3
        if newer is None or newer.status not in ROOT_STATUS_NONE:
            log.debug("%s: root %d: %s; full refresh", config.name, version + 1,
                      "unclear" if newer is None else f"HTTP {newer.status}")
            return False
        new = get(f"{base}timestamp.json", limit=TIMESTAMP_MAX_LENGTH, **kw)  # 5.4.1
    except (OSError, ValueError, UdriverError) as e:  # ValueError: a bad port in the URL
        log.debug("%s: %s; full refresh", config.name, e)
        return False
    if new is None or new.status != 200 or new.body != raw["timestamp"]:  # 5.4.2, 5.4.3
        log.debug("%s: timestamp.json changed or unclear; full refresh", config.name)
        return False
    return True
