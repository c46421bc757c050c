"""Repository credentials: kept apart from the URL, never printed, never logged.

The one rule (issue 13), modelled on apt's `auth.conf.d` (apt_auth.conf(5)):

- A URL given with `user:password@` is split when the repository is added: the URL is
  stored without its userinfo in `<config>/repos.d/<name>.json` (mode 0644, readable by
  tools), the credentials in `<config>/auth.d/<name>.json`, mode 0600 in a 0700 folder.
- The fetcher sends them as HTTP Basic authentication (RFC 7617) to that repository only;
  requests drops the header when a redirect leaves the host.
- Every text a user or a log can see passes through `mask_secrets`, which replaces the
  password of any `scheme://user:password@` with `********` (twine's `sanitize_url`
  does the same for one URL). A configuration written by an older udriver, with the
  password still in its URL, keeps working and is masked the same way.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from .._record import record
from ..errors import ConfigError
from ..fsio import write_atomic
from ..paths import config_dir

if TYPE_CHECKING:
    import logging

__all__ = [
    "Credentials",
    "MaskingFilter",
    "load_credentials",
    "mask_secrets",
    "remove_credentials",
    "save_credentials",
    "split_credentials",
]

MASK = "********"
# scheme://user:password@  (the password may be empty; stops at the first @ of the netloc)
_USERINFO = re.compile(r"(?P<pre>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*):(?P<pw>[^/\s@]*)@")


@record(frozen=True)
class Credentials:
    """HTTP Basic credentials of one repository."""

    username: str
    """The user name (percent-decoded)."""
    password: str
    """The password (percent-decoded); never printed."""

    def __repr__(self) -> str:  # keep the password out of tracebacks and debug logs
        return f"Credentials(username={self.username!r}, password={MASK!r})"


def mask_secrets(text: str) -> str:
    """`text` with the password of every `scheme://user:password@` replaced by ********."""
    return _USERINFO.sub(lambda m: f"{m['pre']}:{MASK}@", text)


def split_credentials(url: str) -> tuple[str, Credentials | None]:
    """The URL without userinfo, and the credentials it carried (None if none)."""
    # Imported here: every command masks its messages (`mask_secrets`), few split a URL,
    # and urllib.parse (with ipaddress) is a tenth of `udriver status`' own time.
    from urllib.parse import unquote, urlsplit, urlunsplit

    p = urlsplit(url)
    if p.username is None and p.password is None:
        return url, None
    host = p.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if p.port is not None:
        host += f":{p.port}"
    clean = urlunsplit((p.scheme, host, p.path, p.query, p.fragment))
    return clean, Credentials(unquote(p.username or ""), unquote(p.password or ""))


def _auth_file(name: str) -> Path:
    return config_dir() / "auth.d" / f"{name}.json"


def save_credentials(name: str, creds: Credentials) -> Path:
    """Store `creds` for repository `name`, mode 0600 in a 0700 folder.

    Raises:
        ConfigError: the file cannot be written (e.g. not root for /etc/udriver).
    """

    path = _auth_file(name)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        data = json.dumps({"username": creds.username, "password": creds.password},
                          sort_keys=True) + "\n"
        write_atomic(path, data.encode(), mode=0o600)
    except OSError as e:
        raise ConfigError(f"Cannot store the credentials of repository {name!r} "
                          f"({e.strerror}): {str(path)!r}") from e
    return path


def load_credentials(name: str) -> Credentials | None:
    """The stored credentials of repository `name`, or None.

    Raises:
        ConfigError: the file exists but is unreadable, malformed, or readable by others.
    """
    path = _auth_file(name)
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(f"Cannot read credentials ({e.strerror}): {str(path)!r}") from e
    if st.st_mode & 0o077:
        err = ConfigError(f"Credentials file is readable by other users "
                          f"(mode {st.st_mode & 0o777:04o}): {str(path)!r}")
        err.hint = f"chmod 600 {path}"
        raise err
    try:
        obj = json.loads(path.read_bytes())
        return Credentials(str(obj["username"]), str(obj["password"]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"Invalid credentials file ({type(e).__name__}): {str(path)!r}") from e


def remove_credentials(name: str) -> None:
    """Forget the credentials of repository `name` (no error if there were none)."""
    _auth_file(name).unlink(missing_ok=True)


class MaskingFilter:
    """A logging filter that masks credentials in every record it passes (any object
    with a `filter` method is one to `logging`; not a `logging.Filter`, whose import
    `udriver.cli.dispatch` defers: `udriver._log`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        masked = mask_secrets(msg)
        if masked != msg:
            record.msg, record.args = masked, None
        return True
