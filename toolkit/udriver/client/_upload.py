"""Upload built drivers to a repository server, as twine does for PyPI (vendors' side).

Rules:
- The token never appears on a command line (where `ps` shows it) or in any output: it
  comes from the environment (`UDRIVER_UPLOAD_TOKEN`) or from a file that only its
  owner can read (mode 0600, like `~/.pypirc` should be); a file readable by others is
  refused before anything is sent.
- Each file is checked to be a driver artifact by name before the upload, streamed as the
  request body of `PUT <url>/api/v1/packages/<basename>` (docs/serving.md), and the
  server's verdict (`published`, `unchanged`, or a 4xx with its error code and message)
  is returned per file. The server validates and publishes each file atomically; one
  file refused does not stop the others.
- The server URL is shown with any credentials masked.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..errors import ConfigError, RepositoryError
from ._auth import mask_secrets

__all__ = ["UploadResult", "read_token", "upload"]


@dataclass(frozen=True)
class UploadResult:
    """The server's verdict on one file."""

    file: str
    """The file's base name."""
    ok: bool
    """Published now or already (the same bytes)."""
    result: str
    """`published`, `unchanged`, or the server's error code (`conflict`, `out-of-scope`...)."""
    status: int
    """HTTP status (0 if the server was not reached)."""
    message: str
    """The server's message, or what went wrong on the way."""
    sha256: str
    """The sha256 of the bytes sent."""


def read_token(token_file: str | None) -> str:
    """The upload token: from `token_file` (0600) if given, else $UDRIVER_UPLOAD_TOKEN.

    Raises:
        ConfigError: no token; the file is unreadable, empty or readable by others.
    """
    if token_file:
        path = Path(token_file)
        try:
            st = path.stat()
            data = path.read_text().strip()
        except OSError as e:
            raise ConfigError(f"Cannot read the token file ({e.strerror}): {token_file!r}") from e
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            err = ConfigError(f"The token file is readable by other users "
                              f"(mode {stat.S_IMODE(st.st_mode):04o}): {token_file!r}")
            err.hint = f"chmod 600 {token_file}"
            raise err
        if not data:
            raise ConfigError(f"The token file is empty: {token_file!r}")
        return data
    token = os.environ.get("UDRIVER_UPLOAD_TOKEN", "").strip()
    if not token:
        err = ConfigError("No upload token")
        err.hint = ("set UDRIVER_UPLOAD_TOKEN, or pass --token-file FILE (mode 0600) "
                    "holding the token `udriver-repo vendor add` printed")
        raise err
    return token


def _check_files(files: Iterable[str]) -> list[Path]:
    paths = [Path(f) for f in files]
    problems = []
    for p in paths:
        if not p.name.endswith((".whl", ".deb")):
            problems.append(f"{str(p)!r} is not a .whl or .deb file")
        elif not p.is_file():
            problems.append(f"{str(p)!r} does not exist")
    if problems:
        raise ConfigError("Nothing uploaded: " + "; ".join(problems))
    return paths


def upload(url: str, token: str, files: Iterable[str], *, timeout: float = 300.0
           ) -> list[UploadResult]:
    """Upload `files` to the server at `url`; one result per file, in order.

    Raises:
        ConfigError: a file is missing or not a driver artifact (nothing is sent then),
            or `url` is not an http(s) URL.
        RepositoryError: the server cannot be reached at all.
    """
    import requests  # not at import time: most udriver commands never upload

    from ._config import check_url
    from ._fetcher import _reason

    base = check_url(url)
    paths = _check_files(files)
    out: list[UploadResult] = []
    with requests.Session() as s:
        s.headers["User-Agent"] = f"udriver/{__version__}"
        for p in paths:
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
            headers = {"Authorization": f"Bearer {token}",
                       "Content-Type": "application/octet-stream"}
            try:
                with p.open("rb") as body:
                    r = s.put(f"{base}/api/v1/packages/{p.name}", data=body, headers=headers,
                              timeout=(10, timeout))
            except requests.exceptions.ConnectionError as e:
                if not out:
                    raise RepositoryError(f"cannot reach {mask_secrets(base)}: "
                                          f"{_reason(e)}") from e
                out.append(UploadResult(p.name, False, "unreachable", 0, _reason(e), digest))
                continue
            except requests.exceptions.RequestException as e:
                out.append(UploadResult(p.name, False, "failed", 0, _reason(e), digest))
                continue
            try:
                body_json = r.json()
            except ValueError:
                body_json = {}
            if not isinstance(body_json, dict):
                body_json = {}
            if r.status_code in (200, 201):
                out.append(UploadResult(p.name, True, str(body_json.get("result", "published")),
                                        r.status_code, "", digest))
            else:
                msg = str(body_json.get("message") or r.reason or "")
                out.append(UploadResult(p.name, False, str(body_json.get("error", "error")),
                                        r.status_code, mask_secrets(msg)[:2000], digest))
    return out
