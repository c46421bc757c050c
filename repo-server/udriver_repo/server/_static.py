"""Serving REPO/public read-only, exactly as nginx would (see docs/serving.md).

Rules:
- Only GET and HEAD. Only regular files below REPO/public, after resolving symlinks: a
  path with an empty, `.` or `..` segment, a backslash or NUL, or a hidden (dot) segment
  is 404 before the file system is asked; a symlink that resolves outside REPO/public is
  404 too. Directories are never listed.
- Conditional and partial requests are aiohttp's `FileResponse`: a strong ETag from
  mtime and size, `If-None-Match` -> 304 (RFC 9110 section 13.1.2), `Range` -> 206 and
  an unsatisfiable range -> 416 with `Content-Range: bytes */size` (RFC 9110 section 14).
  The publisher never rewrites a file in place (it writes new names and renames), so
  mtime+size changes whenever the bytes do.
- Cache-Control follows the TUF layout: consistent-snapshot files (`N.role.json`,
  `<sha256>.name` targets, pool/ and by-hash files) never change -> immutable; the
  entry points a client polls (timestamp.json, root.json copies, Release/InRelease,
  Packages) -> no-cache, so caches revalidate with the ETag.
"""

from __future__ import annotations

import mimetypes
import os
import re
import stat
from pathlib import Path
from typing import Any

from aiohttp import web

from ._state import STATE, ServerState

__all__ = ["handle_static", "resolve_public"]

_IMMUTABLE = re.compile(
    r"^(metadata/[0-9]+\.[^/]+\.json"
    r"|targets/.*/[0-9a-f]{64}\.[^/]+"
    r"|pool/.+"
    r"|dists/.+/by-hash/.+)$"
)
_TYPES = {".json": "application/json", ".whl": "application/zip",
          ".deb": "application/vnd.debian.binary-package", ".asc": "application/pgp-keys",
          ".gpg": "application/octet-stream", ".xz": "application/x-xz",
          ".gz": "application/gzip"}


def resolve_public(public: Path, rel: str) -> Path | None:
    """Map a URL path below `/` to a regular file below `public`, or None.

    Args:
        public: REPO/public, already resolved.
        rel: the percent-decoded URL path without its leading `/`.
    """
    if not rel or "\\" in rel or "\x00" in rel:
        return None
    parts = rel.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    # Fast path: lstat only the components below `public` (already resolved). No
    # component is a symlink (the publisher makes none) -> the path is inside `public`.
    path = str(public)
    try:
        for part in parts:
            path = f"{path}/{part}"
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                break
        else:
            return Path(path) if stat.S_ISREG(mode) else None
        # A symlink: resolve it all and check where it really points.
        real = public.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):  # missing, loop, name too long, NUL
        return None
    if not real.is_relative_to(public) or not real.is_file():
        return None
    return real


class _PlainFileResponse(web.FileResponse):
    """A FileResponse that never substitutes a pre-compressed `X.gz` sibling for `X`.

    REPO/public holds `Packages` next to `Packages.gz`; nginx (without gzip_static) sends
    each file as itself, and so do we: the bytes and ETag of a URL never depend on the
    client's Accept-Encoding.
    """

    def _get_file_path_stat_encoding(self, accept_encoding: str) -> Any:  # aiohttp >= 3.9
        return super()._get_file_path_stat_encoding("")

    def _get_file_path_stat_and_gzip(self, check_for_gzipped_file: bool) -> Any:  # 3.8
        return super()._get_file_path_stat_and_gzip(False)  # type: ignore[misc]


def _content_type(path: Path) -> str:
    return _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or \
        "application/octet-stream"


async def handle_static(request: web.Request) -> web.StreamResponse:
    """GET/HEAD a file of the static tree."""
    state: ServerState = request.app[STATE]
    rel = request.match_info.get("path", "")
    real = resolve_public(state.public, rel)
    if real is None:
        raise web.HTTPNotFound(text="404: Not Found\n")
    headers = {
        "Cache-Control": "public, max-age=31536000, immutable" if _IMMUTABLE.match(rel)
        else "no-cache",
        "Content-Type": _content_type(real),
        "X-Content-Type-Options": "nosniff",
    }
    return _PlainFileResponse(real, headers=headers)
